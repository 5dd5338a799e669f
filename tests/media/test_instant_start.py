"""Instant start against a real node and real aiortc peers: a publisher whose keyframes come every 20 s whatever it
is asked (a pre-encoded clip, as OBS with a long keyframe interval), and a viewer joining 2 s into the group.

With the group-of-pictures cache the joiner decodes the group's keyframe, the one the first viewer decoded 2 s
before, while the publisher has still sent only that one keyframe. Without it (the cache set to 0) the joiner
decodes nothing while the group runs on. Both are stated in frames and keyframe counts, not in wall time."""

from __future__ import annotations

import pytest
from mediapeers import FPS, VIDEO_CLOCK, ClipTrack, encode_clip, publish, wait_for, watch

from livecore.media import MEDIA

KEYFRAME_INTERVAL_FRAMES = 20 * FPS  # longer than each test runs: its first keyframe is the only one


@pytest.fixture(scope="module")
def clip() -> list[bytes]:
    return encode_clip(KEYFRAME_INTERVAL_FRAMES, KEYFRAME_INTERVAL_FRAMES)


async def _live_with_one_viewer(node, http, clip):  # type: ignore[no-untyped-def]
    account = await node.signup(roles=["creator"])
    stream = await node.create_stream(account["token"], live=False)
    publisher = await publish(http, node.url, stream, video_track=ClipTrack(clip))
    assert publisher.status == 201
    first = await watch(http, node.url, stream["id"], kinds=("video",))
    assert first.status == 201, first.body
    await wait_for(lambda: len(first.video_pts) >= 2 * FPS, 30)  # 2 s into the only group
    forwarder = node.app[MEDIA].rooms[stream["id"]].forwarders["video"]
    assert forwarder.keyframes_in == 1
    return stream, publisher, first, forwarder


def _outlet(node, stream, viewer):  # type: ignore[no-untyped-def]
    [(_, outlet)] = node.app[MEDIA].viewer(stream["id"], viewer.location.rsplit("/", 1)[-1]).outlets
    return outlet


async def test_a_joiner_decodes_the_cached_keyframe_before_the_next_one_is_sent(node_factory, http, clip):  # type: ignore[no-untyped-def]
    node = await node_factory()
    stream, publisher, first, forwarder = await _live_with_one_viewer(node, http, clip)
    joiner = None
    try:
        cached_starts = forwarder.cached_starts
        joiner = await watch(http, node.url, stream["id"], kinds=("video",))
        assert joiner.status == 201, joiner.body
        await wait_for(lambda: len(joiner.video_pts) >= FPS, 15)
        assert forwarder.keyframes_in == 1  # no second keyframe was needed, or sent
        assert forwarder.cached_starts == cached_starts + 1
        # it started on the group's keyframe, which the first viewer started on 2 s of frames before it joined
        assert _outlet(node, stream, joiner).start_timestamp == _outlet(node, stream, first).start_timestamp
        # and decoded every frame from there, in order (a receiver's pts count from its first frame)
        assert joiner.video_pts == first.video_pts[:len(joiner.video_pts)]
    finally:
        for viewer in (first, joiner):
            if viewer:
                await viewer.close()
        await publisher.pc.close()


async def test_without_the_cache_a_joiner_waits_for_the_next_keyframe(node_factory, http, clip):  # type: ignore[no-untyped-def]
    node = await node_factory(media_gop_cache_packets_max=0)
    account = await node.signup(roles=["creator"])
    stream = await node.create_stream(account["token"], live=False)
    publisher = await publish(http, node.url, stream, video_track=ClipTrack(clip))
    assert publisher.status == 201
    forwarder = node.app[MEDIA].rooms[stream["id"]].forwarders["video"]
    joiner = None
    try:
        await wait_for(lambda: forwarder.keyframes_in == 1, 15)  # the group began before the joiner came
        joiner = await watch(http, node.url, stream["id"], kinds=("video",))
        assert joiner.status == 201, joiner.body
        await wait_for(lambda: _outlet(node, stream, joiner).sock is not None, 15)  # connected: in the forwarder
        joined_at = forwarder.last_timestamp
        await wait_for(lambda: _stream_time_since(forwarder, joined_at) >= 2 * VIDEO_CLOCK, 15)
        # 2 s of the group went out after the joiner was connected, and it decoded none of it
        assert joiner.video_pts == [] and forwarder.keyframes_in == 1 and forwarder.cached_starts == 0
    finally:
        if joiner:
            await joiner.close()
        await publisher.pc.close()


def _stream_time_since(forwarder, timestamp):  # type: ignore[no-untyped-def]
    return (forwarder.last_timestamp - timestamp) & 0xFFFFFFFF


async def test_a_joiner_on_another_node_starts_through_the_relay_without_a_new_keyframe(node_factory, http, clip):  # type: ignore[no-untyped-def]
    owner = await node_factory()
    other = await node_factory()
    stream, publisher, first, forwarder = await _live_with_one_viewer(owner, http, clip)
    joiner = None
    try:
        joiner = await watch(http, other.url, stream["id"], kinds=("video",))  # pulls a relay from the owner now
        assert joiner.status == 201, joiner.body
        await wait_for(lambda: len(joiner.video_pts) >= FPS, 15)
        assert forwarder.keyframes_in == 1  # the relay was started from the owner's cached group, the joiner too
        relay = other.app[MEDIA].rooms[stream["id"]].forwarders["video"]
        assert relay.keyframes_in == 1
        assert joiner.video_pts == first.video_pts[:len(joiner.video_pts)]  # from the group's keyframe on
    finally:
        for viewer in (first, joiner):
            if viewer:
                await viewer.close()
        await publisher.pc.close()
