"""The demo seed gives the feeds something to show: the demo creator's clips, followed by the demo viewers."""

from __future__ import annotations

from feedclient import feed_page, feeds_of
from livenode import NodeFactory

from feeds.demo_videos import DEMO_CLIPS
from livecore.seed import DEMO_CREATOR, DEMO_VIEWER


async def test_a_seeded_node_has_videos_in_both_feeds(node_factory: NodeFactory) -> None:
    node = await node_factory(seed_demo=True)
    feeds = feeds_of(node)
    await feeds.jobs_done()
    await feeds.processor.drain()
    creator = await node.node.pool.fetchval("SELECT id FROM accounts WHERE username = $1", DEMO_CREATOR.username)
    captions = [caption for caption, _, _ in DEMO_CLIPS]
    clips = "SELECT caption, state FROM videos WHERE author_id = $1 AND caption = ANY($2) ORDER BY id"
    rows = await node.node.pool.fetch(clips, creator, captions)
    assert [(r["caption"], r["state"]) for r in rows] == [(caption, "ready") for caption in captions]
    async with node.http.post(f"{node.url}/api/sessions", json={"username": DEMO_VIEWER.username,
                                                               "password": DEMO_VIEWER.password}) as response:
        token = (await response.json())["token"]
    following = await feed_page(node, "following", token, limit=50)
    assert {item["video"]["author"]["id"] for item in following["items"] if item["kind"] == "video"} == {creator}
    assert {item["video"]["caption"] for item in following["items"] if item["kind"] == "video"} >= set(captions)
    await feeds.refresh()
    assert any(item["kind"] == "video" for item in (await feed_page(node, "for-you", token))["items"])
    again = await node_factory(seed_demo=True)  # a restart posts nothing twice
    await feeds_of(again).jobs_done()
    assert len(await node.node.pool.fetch(clips, creator, captions)) == len(DEMO_CLIPS)
