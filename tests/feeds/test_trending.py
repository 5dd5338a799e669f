"""Trending is computed once per period for the whole cluster: the node whose turn it is runs the aggregate and
shares the lists; the others use them; a node that finds none computes its own."""

from __future__ import annotations

import secrets

from clips import make_mp4
from feedclient import auth, feeds_of, post_video
from livenode import RunningNode

from feeds.trending import LISTS_KEY, TURN_KEY, trending_scores

HOUR_MS = 3_600_000


async def _watched(node: RunningNode) -> int:
    """A new video, watched to the end by a new viewer: it trends in the viewer's region."""
    author = await node.signup()
    video = await post_video(node, author["token"], make_mp4(seconds=1))
    viewer = await node.signup()
    event = {"id": secrets.token_hex(6), "video_id": video["id"], "kind": "watch", "watch_ms": 60_000}
    async with node.http.post(f"{node.url}/api/engagements", json={"events": [event]},
                              headers=auth(viewer["token"])) as response:
        assert response.status == 200, await response.text()
    return int(video["id"])


async def test_one_node_computes_trending_per_period_and_the_others_use_its_lists(node_factory) -> None:  # type: ignore[no-untyped-def]
    # A period of an hour: the nodes' own background refreshes take no turn during the test.
    first, second = [await node_factory(foryou_refresh_ms=HOUR_MS) for _ in range(2)]
    redis = first.node.redis
    await redis.delete(TURN_KEY, LISTS_KEY)
    try:
        video_id = await _watched(first)
        a, b = feeds_of(first).trending, feeds_of(second).trending
        now_ms = first.node.clock.now_ms()
        computed = (a.computed, b.computed)
        lists = await a.current(now_ms, 72)
        assert any(video_id in [v for v, _ in pairs] for pairs in lists.values())
        assert lists == await b.current(now_ms, 72)  # the second node's turn has not come: the first's lists
        assert (a.computed, b.computed) == (computed[0] + 1, computed[1])
        assert lists == await trending_scores(second.node.pool, now_ms, 72)  # as if it had run them itself

        await redis.delete(LISTS_KEY)  # the node whose turn it is has not shared (yet, or it died)
        assert await b.current(now_ms, 72) == lists
        assert b.computed == computed[1] + 1

        await feeds_of(second).refresh_in_turn()  # what its background refresh does every period
        assert video_id in feeds_of(second).catalogue.trending_everywhere
        assert b.computed == computed[1] + 1
    finally:
        await redis.delete(TURN_KEY, LISTS_KEY)
