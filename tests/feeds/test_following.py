"""The Following feed: fan-out on write and on read agree, timelines rebuild, live creators first, cursors."""

from __future__ import annotations

import asyncio

from feedclient import all_video_ids, auth, feed_page, feeds_of, follow, get_json, post_video
from livenode import RunningNode

from feeds.cards import LiveNow
from feeds.timelines import BUILT, fingerprint, fingerprint_key, timeline_key
from livecore.clock import ManualClock


async def test_a_followed_creators_new_video_appears_at_the_top(node: RunningNode) -> None:
    creator, viewer = await node.signup(), await node.signup()
    await follow(node, viewer["token"], creator["id"])
    older = await post_video(node, creator["token"])
    assert (await feed_page(node, "following", viewer["token"]))["items"][0]["video"]["id"] == older["id"]
    newer = await post_video(node, creator["token"])  # fanned out into the timeline built by the read above
    assert await node.node.redis.zscore(timeline_key(viewer["id"]), str(newer["id"])) == newer["id"]
    page = await feed_page(node, "following", viewer["token"])
    assert [item["video"]["id"] for item in page["items"]] == [newer["id"], older["id"]]
    assert page["items"][0]["source"] == "followed" and page["next_cursor"] is None


async def test_fan_out_on_write_and_on_read_give_the_same_pages(node_factory) -> None:  # type: ignore[no-untyped-def]
    writes = await node_factory(fanout_followers_max=1000)
    reads = await node_factory(fanout_followers_max=0)  # every author is "large" here: all merged at read time
    authors = [await writes.signup() for _ in range(3)]
    viewer, stranger = await writes.signup(), await writes.signup()
    for author in authors[:2]:
        await follow(writes, viewer["token"], author["id"])
    await all_video_ids(writes, "following", viewer["token"], 2)  # builds the timeline, so videos fan out into it
    posted = [await post_video(writes, author["token"]) for author in authors * 2]
    await post_video(writes, stranger["token"])
    for node in (writes, reads):
        await feeds_of(node).refresh()
    expected = sorted((v["id"] for v in posted if v["author"]["id"] != authors[2]["id"]), reverse=True)
    on_write = await all_video_ids(writes, "following", viewer["token"], 3)
    on_read = await all_video_ids(reads, "following", viewer["token"], 3)
    assert on_write == on_read == expected
    assert await writes.node.redis.zcard(timeline_key(viewer["id"])) == 1  # the read node wrote only the marker
    await writes.node.redis.delete(timeline_key(viewer["id"]))
    assert await all_video_ids(writes, "following", viewer["token"], 3) == expected  # rebuilt from PostgreSQL


async def test_follows_and_unfollows_rebuild_the_timeline(node: RunningNode) -> None:
    one, two, viewer = await node.signup(), await node.signup(), await node.signup()
    first = await post_video(node, one["token"])
    second = await post_video(node, two["token"])
    await follow(node, viewer["token"], one["id"])
    assert await all_video_ids(node, "following", viewer["token"], 10) == [first["id"]]
    await follow(node, viewer["token"], two["id"])
    assert await all_video_ids(node, "following", viewer["token"], 10) == [second["id"], first["id"]]
    async with node.http.delete(f"{node.url}/api/users/{one['id']}/follow", headers=auth(viewer["token"])):
        pass
    assert await all_video_ids(node, "following", viewer["token"], 10) == [second["id"]]


def _rebuilds(node: RunningNode) -> float:
    return node.node.registry.get_sample_value("livecore_feed_timeline_rebuilds_total") or 0.0


async def test_concurrent_first_reads_rebuild_a_timeline_once(node: RunningNode) -> None:
    creator, other, viewer = await node.signup(), await node.signup(), await node.signup()
    await follow(node, viewer["token"], creator["id"])
    posted = [(await post_video(node, creator["token"]))["id"] for _ in range(2)]
    timelines = feeds_of(node).timelines
    await timelines.drop(viewer["id"])
    before = _rebuilds(node)
    answers = await asyncio.gather(*(timelines.rebuild(viewer["id"], [creator["id"]]) for _ in range(5)),
                                   timelines.rebuild(viewer["id"], [creator["id"], other["id"]]))
    assert answers[:5] == [posted[::-1]] * 5 and answers[5] == posted[::-1]
    assert _rebuilds(node) == before + 2  # one for the five that asked for the same authors, one for the other set
    stored = await node.node.redis.zrevrange(timeline_key(viewer["id"]), 0, -1, withscores=True)
    assert [(int(member), int(score)) for member, score in stored] == [(v, v) for v in posted[::-1]] + [(BUILT, 0)]
    assert (await node.node.redis.get(fingerprint_key(viewer["id"]))).decode() in (
        fingerprint([creator["id"]]), fingerprint([creator["id"], other["id"]]))
    await timelines.rebuild(viewer["id"], [creator["id"]])
    assert _rebuilds(node) == before + 3  # a finished rebuild is not reused: the next one reads again


async def test_a_first_page_for_a_missing_timeline_is_the_one_it_rebuilds(node: RunningNode) -> None:
    creator, viewer = await node.signup(), await node.signup()
    await follow(node, viewer["token"], creator["id"])
    posted = [(await post_video(node, creator["token"]))["id"] for _ in range(3)]
    before = _rebuilds(node)
    pages = await asyncio.gather(*(feed_page(node, "following", viewer["token"], limit=2) for _ in range(4)))
    for page in pages:
        assert [item["video"]["id"] for item in page["items"]] == posted[:0:-1] and page["next_cursor"]
    assert 1 <= _rebuilds(node) - before <= 4
    settled = _rebuilds(node)
    assert await all_video_ids(node, "following", viewer["token"], 2) == posted[::-1]
    assert _rebuilds(node) == settled  # the rebuilt timeline serves every later page


async def test_a_rebuild_writes_more_ids_than_one_zadd_takes(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = await node_factory(timeline_entries_max=1200)
    creator, viewer = await node.signup(), await node.signup()
    await follow(node, viewer["token"], creator["id"])
    pool = node.node.pool
    # Inserted directly (uploading 1,100 clips would take minutes); mature, so no minor's feed meets them, and
    # deleted at the end, so no other test's catalogue does.
    ids = [r["id"] for r in await pool.fetch(
        "INSERT INTO videos (author_id, state, mature, duration_ms, width, height, ready_at)"
        " SELECT $1, 'ready', true, 1000, 720, 1280, now() FROM generate_series(1, 1100) RETURNING id",
        creator["id"])]
    try:
        assert await feeds_of(node).timelines.rebuild(viewer["id"], [creator["id"]]) == sorted(ids, reverse=True)
        key = timeline_key(viewer["id"])
        assert await node.node.redis.zcard(key) == 1101
        assert [int(m) for m in await node.node.redis.zrevrange(key, 0, -2)] == sorted(ids, reverse=True)
        page, trimmed = await feeds_of(node).timelines.page(viewer["id"], [creator["id"]], ids[-3], 2)
        assert page == [ids[-4], ids[-5]] and not trimmed
    finally:
        await pool.execute("DELETE FROM videos WHERE author_id = $1", creator["id"])


async def test_a_capped_timeline_pages_on_from_postgresql(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = await node_factory(timeline_entries_max=3)
    creator, viewer = await node.signup(), await node.signup()
    await follow(node, viewer["token"], creator["id"])
    await feed_page(node, "following", viewer["token"])
    posted = [(await post_video(node, creator["token"]))["id"] for _ in range(5)]
    assert await node.node.redis.zcard(timeline_key(viewer["id"])) == 4  # three videos and the marker
    assert await all_video_ids(node, "following", viewer["token"], 2) == posted[::-1]


async def test_live_creators_come_first_on_the_first_page(node: RunningNode) -> None:
    creator, quiet, viewer = await node.signup(), await node.signup(), await node.signup()
    for author in (creator, quiet):
        await follow(node, viewer["token"], author["id"])
    video = await post_video(node, quiet["token"])
    stream = await node.create_stream(creator["token"], title="on air")
    page = await feed_page(node, "following", viewer["token"], limit=1)
    assert [item["kind"] for item in page["items"]] == ["live", "video"]
    live = page["items"][0]
    assert live["stream_id"] == stream["id"] and live["watch_url"] == f"/watch.html?room={stream['id']}"
    assert page["items"][1]["video"]["id"] == video["id"]


async def test_reported_authors_and_mature_videos_for_minors_are_left_out(node: RunningNode) -> None:
    creator, reported = await node.signup(), await node.signup()
    minor = await node.signup(birth_date="2014-05-05")
    for author in (creator, reported):
        await follow(node, minor["token"], author["id"])
    mature = await post_video(node, creator["token"], mature=True)
    plain = await post_video(node, creator["token"])
    bad = await post_video(node, reported["token"])
    async with node.http.post(f"{node.url}/api/engagements", headers=auth(minor["token"]),
                              json={"events": [{"id": "r1", "video_id": bad["id"], "kind": "report"}]}) as response:
        assert response.status == 200
    assert await all_video_ids(node, "following", minor["token"], 10) == [plain["id"]]
    adult = await node.signup()
    await follow(node, adult["token"], creator["id"])
    assert await all_video_ids(node, "following", adult["token"], 10) == [plain["id"], mature["id"]]


async def test_bad_cursors_and_oversize_limits_are_problems(node: RunningNode) -> None:
    viewer = await node.signup()
    for query, field in (("cursor=not-a-cursor", "cursor"), ("cursor=eyJmIjoidmlkZW9zIiwiYiI6MX0", "cursor"),
                         ("cursor=eyJmIjoiZm9sbG93aW5nIiwiYiI6LTF9", "cursor"), ("limit=51", "limit"),
                         ("limit=0", "limit"), ("cursor=%00", "cursor")):
        status, problem = await get_json(node, f"/api/feed/following?{query}", viewer["token"])
        assert status == 400, (query, problem)
        assert problem["type"] in ("livecore:bad-cursor", "livecore:invalid-field") and problem["field"] == field
    status, _ = await get_json(node, "/api/feed/following")
    assert status == 401


async def test_pages_do_not_queue_behind_a_read_of_the_live_streams(node: RunningNode) -> None:
    clock = ManualClock()
    live_now = LiveNow(node.node.pool, None, clock, ttl_ms=1000)
    first, _ = await live_now.streams()
    clock.advance(1.0)  # stale: the next caller reads again
    reading = asyncio.ensure_future(live_now.streams())
    await asyncio.sleep(0)  # it holds the lock and waits for PostgreSQL
    meanwhile, _ = await live_now.streams()
    assert meanwhile is first and not reading.done()  # the last list at once, not a wait for the read
    fresh, _ = await reading
    assert fresh is not first
    assert (await live_now.streams())[0] is fresh
