"""WHIP ingest and WHEP playback with real aiortc peers over loopback."""

from __future__ import annotations

import asyncio

import pytest
from mediapeers import publish, wait_for, watch

from livecore.media import MEDIA


async def _creator(node):  # type: ignore[no-untyped-def]
    account = await node.signup(roles=["creator"])
    return account, await node.create_stream(account["token"], live=False)


async def _sender_reports(viewer, timeout_s: float = 5.0) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The packet counts of the RTCP sender reports the viewer's receivers have seen, by kind, once all have one."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        counts = {}
        for transceiver in viewer.pc.getTransceivers():
            for stats in (await transceiver.receiver.getStats()).values():
                if stats.type == "remote-outbound-rtp":
                    counts[transceiver.kind] = stats.packetsSent
        if len(counts) == len(viewer.pc.getTransceivers()) or asyncio.get_running_loop().time() > deadline:
            return counts
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("video_mime", ["video/H264", "video/VP8"])
async def test_viewers_decode_forwarded_stream(node, http, video_mime):  # type: ignore[no-untyped-def]
    _, stream = await _creator(node)
    publisher = await publish(http, node.url, stream, video_mime)
    assert publisher.status == 201
    assert publisher.location.startswith(f"/whip/{stream['id']}/")
    viewers = [await watch(http, node.url, stream["id"]) for _ in range(3)]
    try:
        assert all(v.status == 201 for v in viewers), [v.body for v in viewers]
        await wait_for(lambda: all(len(v.video_pts) >= 15 and v.audio_frames >= 20 for v in viewers), 15)
        for viewer in viewers:
            assert viewer.video_pts == sorted(viewer.video_pts)
            assert viewer.first_video_at - viewer.started_at < 3
        room = node.app[MEDIA].rooms[stream["id"]]
        assert room.forwarders["video"].codec.mimeType.lower() == video_mime.lower()
        assert room.forwarders["video"].packets_forwarded > 0
        for viewer in viewers:  # the forwarder's RTCP sender reports reach every viewer, with its own counts
            counts = await _sender_reports(viewer)
            assert set(counts) == {"video", "audio"} and all(count > 0 for count in counts.values()), counts
    finally:
        for viewer in viewers:
            await viewer.close()
        await publisher.pc.close()


async def test_mid_stream_joiner_gets_a_keyframe_within_a_second(node, http):  # type: ignore[no-untyped-def]
    _, stream = await _creator(node)
    publisher = await publish(http, node.url, stream)
    first = await watch(http, node.url, stream["id"])
    late = None
    try:
        await wait_for(lambda: len(first.video_pts) >= 20, 15)
        late = await watch(http, node.url, stream["id"])
        await wait_for(lambda: late.first_video_at is not None, 5)
        assert late.first_video_at - late.started_at < 1.5
        await wait_for(lambda: len(late.video_pts) >= 10, 5)
        assert late.video_pts == sorted(late.video_pts)
    finally:
        for viewer in (first, late):
            if viewer:
                await viewer.close()
        await publisher.pc.close()


async def test_a_publisher_gone_past_the_grace_ends_the_stream(node_factory, http):  # type: ignore[no-untyped-def]
    """The publisher's connection closes without a DELETE: live through the grace, then ended, and the room hears."""
    from roomclient import events_until

    from livecore.clock import ManualClock

    clock = ManualClock()
    node = await node_factory(clock=clock, media_publish_grace_ms=10_000)
    account, stream = await _creator(node)
    socket = await node.ws(stream["id"], account["token"])
    await events_until(socket, lambda seen: any(e.get("type") == "snapshot" for e in seen))
    publisher = await publish(http, node.url, stream)
    viewer = await watch(http, node.url, stream["id"])
    plane = node.app[MEDIA]
    try:
        await events_until(socket, lambda seen: any(e.get("type") == "stream" and e.get("state") == "live"
                                                     for e in seen), 10)
        await wait_for(lambda: len(viewer.video_pts) >= 5, 15)
        room = plane.rooms[stream["id"]]
        await publisher.pc.close()
        await wait_for(lambda: room.closed, 10)
        clock.advance(9)
        assert stream["id"] not in await plane.sweep_streams()  # (a sweep also ends other tests' leftovers)
        async with http.get(f"{node.url}/api/streams/{stream['id']}") as response:
            assert (await response.json())["state"] == "live"
        clock.advance(2)
        await plane.sweep_streams()  # or the upkeep's own sweep, whichever runs first
        await events_until(socket, lambda seen: any(e.get("type") == "stream" and e.get("state") == "ended"
                                                     for e in seen), 10)
        async with http.get(f"{node.url}/api/streams/{stream['id']}") as response:
            assert (await response.json())["state"] == "ended"
        await wait_for(lambda: viewer.pc.connectionState in ("closed", "failed") or not plane.rooms, 10)
    finally:
        await viewer.close()


async def test_whip_delete_ends_and_errors_have_statuses(node, http):  # type: ignore[no-untyped-def]
    _, stream = await _creator(node)
    wrong = await publish(http, node.url, stream, key="sk_wrong")
    assert wrong.status == 401
    headers = {"Authorization": f"Bearer {stream['stream_key']}", "Content-Type": "application/sdp"}
    async with http.post(f"{node.url}/whip/{stream['id']}", data="v=0\r\nnonsense", headers=headers) as response:
        assert response.status == 400
        assert response.content_type == "application/problem+json"
        assert (await response.json())["type"] == "livecore:malformed-sdp"
    plain = {**headers, "Content-Type": "text/plain"}
    async with http.post(f"{node.url}/whip/{stream['id']}", data="x", headers=plain) as r:
        assert r.status == 415
    async with http.post(f"{node.url}/whep/{stream['id']}", data="v=0\r\n",
                         headers={"Content-Type": "application/sdp"}) as response:
        assert response.status == 400
    offline = await watch(http, node.url, stream["id"])
    assert offline.status == 404
    first = await publish(http, node.url, stream)
    assert first.status == 201
    second = await publish(http, node.url, stream)
    assert second.status == 409
    key = {"Authorization": f"Bearer {stream['stream_key']}"}
    async with http.patch(f"{node.url}{first.location}", data="a=mid:0\r\n",
                          headers={**key, "Content-Type": "application/trickle-ice-sdpfrag"}) as response:
        assert response.status == 204
    async with http.delete(f"{node.url}{first.location}", headers=key) as response:
        assert response.status == 200
    async with http.get(f"{node.url}/api/streams/{stream['id']}") as response:
        assert (await response.json())["state"] == "ended"
    again = await publish(http, node.url, stream)
    assert again.status == 409
    await first.pc.close()


async def test_over_capacity_is_503_with_the_hls_url(node_factory, http):  # type: ignore[no-untyped-def]
    node = await node_factory(media_viewers_per_room_max=1)
    _, stream = await _creator(node)
    publisher = await publish(http, node.url, stream)
    first = await watch(http, node.url, stream["id"], decode=False)
    second = await watch(http, node.url, stream["id"], decode=False)
    try:
        assert first.status == 201
        assert second.status == 503
        import json

        body = json.loads(second.body)
        assert body["type"] == "livecore:over-capacity"
        assert body["hls_url"] == f"/hls/{stream['id']}/index.m3u8"
        assert body["limit"] == "media_viewers_per_room_max"
    finally:
        await first.close()
        await publisher.pc.close()
        await asyncio.sleep(0)


async def test_ending_through_the_api_closes_the_publisher(node, http):  # type: ignore[no-untyped-def]
    account, stream = await _creator(node)
    publisher = await publish(http, node.url, stream)
    plane = node.app[MEDIA]
    try:
        room = plane.rooms[stream["id"]]
        await wait_for(lambda: room.connected, 10)
        async with http.post(f"{node.url}/api/streams/{stream['id']}/end",
                             headers={"Authorization": f"Bearer {account['token']}"}) as response:
            assert response.status == 200
        assert stream["id"] not in plane.rooms
        assert room.closed and room.upstream.connectionState == "closed"
        await wait_for(lambda: publisher.pc.connectionState in ("closed", "failed", "disconnected"), 10)
        assert (await publish(http, node.url, stream)).status == 409
    finally:
        await publisher.pc.close()


async def test_an_end_recorded_elsewhere_closes_the_publisher(node, http):  # type: ignore[no-untyped-def]
    """Another node's API ended the stream: only the database says so, and the owner's upkeep notices."""
    from livecore.streams import streams

    _, stream = await _creator(node)
    publisher = await publish(http, node.url, stream)
    plane = node.app[MEDIA]
    try:
        assert await streams.mark_ended(plane.node.pool, stream["id"])
        await wait_for(lambda: stream["id"] not in plane.rooms, 5)
    finally:
        await publisher.pc.close()


async def test_a_video_only_publisher_is_forwarded(node, http):  # type: ignore[no-untyped-def]
    from aiortc import RTCSessionDescription
    from mediapeers import whip_offer

    _, stream = await _creator(node)
    pc = await whip_offer(audio=False)
    headers = {"Authorization": f"Bearer {stream['stream_key']}", "Content-Type": "application/sdp"}
    async with http.post(f"{node.url}/whip/{stream['id']}", data=pc.localDescription.sdp,
                         headers=headers) as response:
        assert response.status == 201, await response.text()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=await response.text(), type="answer"))
    viewer = await watch(http, node.url, stream["id"])
    try:
        await wait_for(lambda: len(viewer.video_pts) >= 10, 15)
        assert set(node.app[MEDIA].rooms[stream["id"]].forwarders) == {"video"}
    finally:
        await viewer.close()
        await pc.close()


async def test_whip_and_whep_answer_as_documented(node, http):  # type: ignore[no-untyped-def]
    """The SDP operations the API fuzzer leaves out (test_openapi_fuzz.py): every answer is a documented one."""
    from apidoc import api_document, assert_documented

    spec = await api_document(http, node.url)
    _, stream = await _creator(node)
    whip, whep = f"{node.url}/whip/{stream['id']}", f"{node.url}/whep/{stream['id']}"
    sdp = {"Content-Type": "application/sdp"}
    bearer = {"Authorization": f"Bearer {stream['stream_key']}"}
    key = {**sdp, **bearer}
    trickle = {"Content-Type": "application/trickle-ice-sdpfrag"}
    keyed_trickle = {**trickle, **bearer}
    answers: list[tuple[str, str, str, dict, str, int]] = [
        ("POST", "/whep/{id}", whep, sdp, "v=0\r\nnonsense", 400),
        ("POST", "/whep/{id}", whep, {"Content-Type": "text/plain"}, "v=0", 415),
        ("POST", "/whip/{id}", whip, sdp, "v=0", 401),
        ("POST", "/whip/{id}", whip, {**sdp, "Authorization": "Bearer sk_wrong"}, "v=0", 401),
        ("POST", "/whip/{id}", f"{node.url}/whip/{stream['id'] + 1000}", key, "v=0", 404),
        ("POST", "/whip/{id}", whip, key, "v=0\r\nnonsense", 400),
        ("POST", "/whip/{id}", whip, {**key, "Content-Type": "text/plain"}, "v=0", 415),
        ("PATCH", "/whip/{id}/{session}", f"{whip}/nosuchsession", keyed_trickle, "a=end-of-candidates", 404),
        ("PATCH", "/whip/{id}/{session}", f"{whip}/nosuchsession", trickle, "a=end-of-candidates", 401),
    ]
    publisher = await publish(http, node.url, stream)
    viewer = None
    try:
        assert publisher.status == 201 and publisher.location.startswith(f"/whip/{stream['id']}/")
        again = await publish(http, node.url, stream)
        assert again.status == 409
        viewer = await watch(http, node.url, stream["id"], decode=False)
        assert viewer.status == 201
        session = node.url + publisher.location
        answers += [
            ("PATCH", "/whip/{id}/{session}", session, {**bearer, "Content-Type": "text/plain"}, "", 415),
            ("PATCH", "/whip/{id}/{session}", session, keyed_trickle, "a=mid:0\r\na=candidate:bogus", 400),
            ("PATCH", "/whip/{id}/{session}", session, keyed_trickle, "a=mid:9\r\na=candidate:1 1 udp 2130706431 "
             "192.0.2.1 9 typ host", 204),
            ("PATCH", "/whip/{id}/{session}", session, keyed_trickle, "a=end-of-candidates", 204),
            ("PATCH", "/whip/{id}/{session}", session, {**keyed_trickle, "If-Match": '"other"'}, "", 412),
            ("PATCH", "/whip/{id}/{session}", session, {**keyed_trickle, "If-Match": "*"}, "", 422),
            ("PATCH", "/whep/{id}/{session}", node.url + viewer.location, trickle, "a=end-of-candidates", 204),
            ("PATCH", "/whep/{id}/{session}", node.url + viewer.location, {**trickle, "If-Match": '"x"'}, "", 412),
            ("PATCH", "/whep/{id}/{session}", node.url + viewer.location, {**trickle, "If-Match": "x"}, "", 400),
            ("PATCH", "/whip/{id}/{session}", session, {**keyed_trickle, "If-Match": 'W/"a", "b"'}, "", 412),
            ("POST", "/whep/{id}", f"{node.url}/whep/{stream['id'] + 1000}", sdp,
             viewer.pc.localDescription.sdp, 404),
            ("DELETE", "/whep/{id}/{session}", node.url + viewer.location, {}, "", 200),
            ("DELETE", "/whep/{id}/{session}", node.url + viewer.location, {}, "", 404),
            ("DELETE", "/whip/{id}/{session}", session, {}, "", 401),
            ("DELETE", "/whip/{id}/{session}", session, bearer, "", 200),
            ("DELETE", "/whip/{id}/{session}", session, bearer, "", 404),
        ]
        for method, path, url, headers, body, status in answers:
            async with http.request(method, url, data=body, headers=headers) as response:
                await assert_documented(spec, method, path, response)
                assert response.status == status, (method, url, body, await response.text())
        for answered in (publisher, viewer):  # the 201s: SDP answers with their Location
            assert answered.location
        ended = await publish(http, node.url, stream)
        assert ended.status == 409  # the stream ended with its publisher
    finally:
        if viewer is not None:
            await viewer.close()
        await publisher.pc.close()
