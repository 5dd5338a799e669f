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
    states = await node.node.pool.fetch("SELECT state FROM videos WHERE author_id = $1", creator)
    assert [r["state"] for r in states] == ["ready"] * len(DEMO_CLIPS)
    async with node.http.post(f"{node.url}/api/sessions", json={"username": DEMO_VIEWER.username,
                                                               "password": DEMO_VIEWER.password}) as response:
        token = (await response.json())["token"]
    following = await feed_page(node, "following", token)
    assert {item["video"]["author"]["id"] for item in following["items"] if item["kind"] == "video"} == {creator}
    await feeds.refresh()
    assert any(item["kind"] == "video" for item in (await feed_page(node, "for-you", token))["items"])
    again = await node_factory(seed_demo=True)  # a restart posts nothing twice
    await feeds_of(again).jobs_done()
    assert await node.node.pool.fetchval("SELECT count(*) FROM videos WHERE author_id = $1", creator) == len(
        DEMO_CLIPS)
