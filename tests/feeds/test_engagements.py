"""Engagement events: durable, counted once per event id, applied to counts, streamed for the learner."""

from __future__ import annotations

import asyncio
from typing import Any

from feedclient import auth, feeds_of, get_json, post_video
from livenode import RunningNode

from feeds.engagements import read_stream

LEARNED_WITHIN_S = 30  # the bound is a minute; the stream is read continuously


async def _send(node: RunningNode, token: str, events: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    async with node.http.post(f"{node.url}/api/engagements", json={"events": events},
                              headers=auth(token)) as response:
        return response.status, await response.json(content_type=None)


async def test_a_retried_batch_counts_once_and_reaches_the_stream(node: RunningNode) -> None:
    creator, viewer = await node.signup(), await node.signup()
    video = await post_video(node, creator["token"], hashtags="cats")
    batch = [{"id": "e1", "video_id": video["id"], "kind": "seen"},
             {"id": "e2", "video_id": video["id"], "kind": "watch", "watch_ms": 750},
             {"id": "e3", "video_id": video["id"], "kind": "like"},
             {"id": "e4", "video_id": video["id"], "kind": "share"},
             {"id": "e5", "video_id": 2**62, "kind": "like"}]
    status, first = await _send(node, viewer["token"], batch)
    assert status == 200 and first == {"accepted": 4, "duplicates": 0, "unknown_videos": [2**62]}
    status, again = await _send(node, viewer["token"], [*batch, {"id": "e6", "video_id": video["id"], "kind": "like"}])
    assert again == {"accepted": 1, "duplicates": 4, "unknown_videos": [2**62]}
    _, counted = await get_json(node, f"/api/videos/{video['id']}")
    assert (counted["likes"], counted["views"], counted["shares"]) == (1, 1, 1)  # a second like event is no 2nd like
    stored = await node.node.pool.fetch("SELECT kind, watch_ratio FROM engagements WHERE user_id = $1 ORDER BY kind",
                                        viewer["id"])
    assert [r["kind"] for r in stored] == ["like", "like", "seen", "share", "watch"]
    assert abs(next(r["watch_ratio"] for r in stored if r["kind"] == "watch") - 750 / video["duration_ms"]) < 0.001
    streamed = [e for _, e in await read_stream(node.node.redis, "0", 100_000, None) if e.user_id == viewer["id"]]
    assert sorted(e.kind for e in streamed) == ["like", "like", "seen", "share", "watch"]
    assert all(e.author_id == creator["id"] and e.video_id == video["id"] for e in streamed)
    status, _ = await _send(node, viewer["token"], [{"id": "u1", "video_id": video["id"], "kind": "unlike"}])
    _, counted = await get_json(node, f"/api/videos/{video['id']}")
    assert counted["likes"] == 0


async def test_the_same_event_id_from_two_viewers_is_two_events(node: RunningNode) -> None:
    creator, one, two = await node.signup(), await node.signup(), await node.signup()
    video = await post_video(node, creator["token"])
    for viewer in (one, two):
        _, answer = await _send(node, viewer["token"], [{"id": "same", "video_id": video["id"], "kind": "like"}])
        assert answer["accepted"] == 1
    _, counted = await get_json(node, f"/api/videos/{video['id']}")
    assert counted["likes"] == 2


async def test_not_interested_and_report_exclude_the_author(node: RunningNode) -> None:
    creator, other, viewer = await node.signup(), await node.signup(), await node.signup()
    video = await post_video(node, creator["token"])
    reported = await post_video(node, other["token"])
    await _send(node, viewer["token"], [{"id": "n", "video_id": video["id"], "kind": "not_interested"},
                                        {"id": "r", "video_id": reported["id"], "kind": "report"}])
    rows = await node.node.pool.fetch("SELECT author_id, reason FROM feed_exclusions WHERE user_id = $1",
                                      viewer["id"])
    assert {(r["author_id"], r["reason"]) for r in rows} == {(creator["id"], "not_interested"),
                                                             (other["id"], "report")}


async def test_bad_batches_are_refused_naming_what_was_wrong(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = await node_factory(engagement_events_per_batch_max=2)
    viewer = await node.signup()
    events = [{"id": f"e{i}", "video_id": 1, "kind": "seen"} for i in range(3)]
    status, problem = await _send(node, viewer["token"], events)
    assert status == 400 and problem["field"] == "events" and "engagement_events_per_batch_max" in problem["detail"]
    status, problem = await _send(node, viewer["token"], [{"id": "x", "video_id": 1, "kind": "love"}])
    assert status == 400 and problem["field"].startswith("events.0.kind")
    status, problem = await _send(node, viewer["token"], [{"id": "has space", "video_id": 1, "kind": "seen"}])
    assert status == 400 and problem["field"] == "events.0.id"
    async with node.http.post(f"{node.url}/api/engagements", json={"events": []}) as response:
        assert response.status == 401


async def test_the_running_learner_hears_events_without_being_asked(node: RunningNode) -> None:
    creator, viewer = await node.signup(), await node.signup()
    video = await post_video(node, creator["token"], hashtags="loops")
    feeds = feeds_of(node)
    await feeds.learner.catch_up()
    read, learned = feeds.learner.read, feeds.ranker.examples
    await _send(node, viewer["token"], [{"id": "liked", "video_id": video["id"], "kind": "like"}])
    await asyncio.wait_for(feeds.learner.until_read(read), LEARNED_WITHIN_S)  # the node's own reader, running
    assert feeds.ranker.examples > learned
