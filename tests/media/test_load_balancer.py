"""Two `livecore serve` nodes behind Debian's nginx (round-robin, the README's configuration), driven only through
nginx: every WHIP and WHEP request works whichever node it lands on, relays go node to node and never through the
load balancer, a failed relay is answered at once and leaves nothing behind, and viewer counts stay right while a
killed node's presence expires. Which node answered is read from nginx's access log and the session ids."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from aiortc import RTCSessionDescription
from lbcluster import LbCluster, StartCluster
from mediapeers import Viewer, publish, trickled_whip_offer, wait_for, watch

SDP = {"Content-Type": "application/sdp"}
FRAGMENT = {"Content-Type": "application/trickle-ice-sdpfrag"}
WAIT_S_MAX = 20.0
NODE_REQUEST_TIMEOUT_S = 5.0  # node_request_timeout_ms's default
OFFER_SHAPES = [("video",), ("video", "audio"), ("audio", "video"), ("audio",)]


async def _until(condition, timeout_s: float = WAIT_S_MAX):  # type: ignore[no-untyped-def]
    """Poll an async condition until it holds (a bounded wait for other processes, not a clock deadline)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await condition()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


async def _publish_trickled(cluster: LbCluster, stream: dict) -> tuple[object, str, str]:
    """WHIP through nginx with the candidates trickled one PATCH at a time: (peer connection, Location, ETag)."""
    offer = await trickled_whip_offer()
    headers = {**SDP, "Authorization": f"Bearer {stream['stream_key']}"}
    async with cluster.http.post(f"{cluster.url}/whip/{stream['id']}", data=offer.sdp, headers=headers) as response:
        assert response.status == 201, await response.text()
        answer, location, etag = await response.text(), response.headers["Location"], response.headers["ETag"]
    await offer.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    patch_headers = {**FRAGMENT, "Authorization": f"Bearer {stream['stream_key']}", "If-Match": etag}
    for fragment in [*offer.fragments, offer.end_of_candidates]:  # two or more: round-robin reaches each node
        async with cluster.http.patch(f"{cluster.url}{location}", data=fragment, headers=patch_headers) as response:
            assert response.status == 204, await response.text()
    return offer.pc, location, etag


async def _upstreams(cluster: LbCluster, method: str, uri_start: str, status: str = "", count: int = 1) -> set[str]:
    """The nodes (host:port) nginx sent these requests to, once it has logged at least `count` of them (it logs a
    request just after answering it)."""
    def matching() -> list[dict[str, str]]:
        return [r for r in cluster.nginx.requests() if r["method"] == method and r["uri"].startswith(uri_start)
                and r["status"].startswith(status)]

    await wait_for(lambda: len(matching()) >= count, WAIT_S_MAX)
    return {r["upstream"] for r in matching()}


async def test_whip_trickle_and_delete_work_whichever_node_they_reach(start_cluster: StartCluster) -> None:
    cluster = await start_cluster()
    creator = await cluster.signup()
    stream = await cluster.create_stream(creator["token"])
    pc, location, etag = await _publish_trickled(cluster, stream)
    try:
        holder = cluster.node_of_session(location)
        patched_on = await _upstreams(cluster, "PATCH", location, count=len(cluster.nodes))
        assert patched_on == {f"127.0.0.1:{node.port}" for node in cluster.nodes}, patched_on
        assert await _until(lambda: _state_is(cluster, stream["id"], "live")), "the publisher never connected"

        # The session's node answers refusals too, whichever node got the request: another entity tag, a wrong key.
        for node in cluster.nodes:
            await cluster.steer_next_request_to(node)
            async with cluster.http.patch(f"{cluster.url}{location}", data="a=end-of-candidates\r\n", headers={
                    **FRAGMENT, "Authorization": f"Bearer {stream['stream_key']}", "If-Match": '"other"'}) as r:
                assert r.status == 412 and (await r.json())["etag"] == etag
            await cluster.steer_next_request_to(node)
            async with cluster.http.delete(f"{cluster.url}{location}", headers={"Authorization": "Bearer wrong"}) as r:
                assert r.status == 401 and r.content_type == "application/problem+json"
        assert await _upstreams(cluster, "DELETE", location, "401", count=2) == {
            f"127.0.0.1:{node.port}" for node in cluster.nodes}
        assert await _upstreams(cluster, "PATCH", location, "412", count=2) == {
            f"127.0.0.1:{node.port}" for node in cluster.nodes}

        other = next(node for node in cluster.nodes if node is not holder)
        await cluster.steer_next_request_to(other)
        async with cluster.http.delete(f"{cluster.url}{location}",
                                       headers={"Authorization": f"Bearer {stream['stream_key']}"}) as response:
            assert response.status == 200, await response.text()
        assert await _upstreams(cluster, "DELETE", location, "200") == {f"127.0.0.1:{other.port}"}
        assert (await cluster.stream(stream["id"]))["state"] == "ended"
        assert await cluster.metric(holder, "livecore_media_rooms", role="owner") == 0
        await wait_for(lambda: pc.connectionState in ("closed", "failed"), WAIT_S_MAX)
        async with cluster.http.delete(f"{cluster.url}{location}",
                                       headers={"Authorization": f"Bearer {stream['stream_key']}"}) as response:
            assert response.status == 404
    finally:
        await pc.close()


async def _state_is(cluster: LbCluster, stream_id: int, state: str) -> bool:
    return (await cluster.stream(stream_id))["state"] == state


def _decoding(viewer: Viewer, kinds: tuple[str, ...]) -> bool:
    return ("video" not in kinds or len(viewer.video_pts) >= 10) and ("audio" not in kinds or viewer.audio_frames >= 20)


async def test_whep_offers_of_any_shape_play_from_either_node(start_cluster: StartCluster) -> None:
    cluster = await start_cluster(hls_segment_ms=1000)
    creator = await cluster.signup()
    stream = await cluster.create_stream(creator["token"])
    publisher = await publish(cluster.http, cluster.url, stream)
    assert publisher.status == 201
    owner = cluster.node_of_session(publisher.location)
    viewers: list[tuple[tuple[str, ...], Viewer]] = []
    try:
        assert await _until(lambda: _state_is(cluster, stream["id"], "live")), "the publisher never connected"
        for kinds in OFFER_SHAPES:
            for node in cluster.nodes:
                await cluster.steer_next_request_to(node)
                viewer = await watch(cluster.http, cluster.url, stream["id"], kinds=kinds)
                assert viewer.status == 201, (kinds, viewer.body)
                assert cluster.node_of_session(viewer.location) is node  # served where it landed, relayed or not
                viewers.append((kinds, viewer))
        await wait_for(lambda: all(_decoding(viewer, kinds) for kinds, viewer in viewers), WAIT_S_MAX)
        for _, viewer in viewers:
            assert viewer.video_pts == sorted(viewer.video_pts)
        relay_node = next(node for node in cluster.nodes if node is not owner)
        assert await cluster.metric(relay_node, "livecore_media_rooms", role="relay") == 1
        assert await cluster.metric(owner, "livecore_media_viewers") == len(OFFER_SHAPES) + 1  # and the relay

        for node in cluster.nodes:  # HLS from either node: the owner makes it, the other passes requests on
            await cluster.steer_next_request_to(node)
            async with cluster.http.get(f"{cluster.url}/hls/{stream['id']}/index.m3u8") as response:
                assert response.status == 200, await response.text()
                playlist = await response.text()
            segment = next(line for line in playlist.splitlines() if line and not line.startswith("#"))
            await cluster.steer_next_request_to(node)
            async with cluster.http.get(f"{cluster.url}/hls/{stream['id']}/{segment}") as response:
                assert response.status == 200 and response.content_type == "video/mp2t"
                assert (await response.read())[0] == 0x47  # an MPEG-TS sync byte

        for index, (_, viewer) in enumerate(viewers):  # each ended by a DELETE to either node
            await cluster.steer_next_request_to(cluster.nodes[index % 2])
            async with cluster.http.delete(f"{cluster.url}{viewer.location}") as response:
                assert response.status == 200, await response.text()
        for node in cluster.nodes:
            assert await cluster.metric(node, "livecore_media_viewers") == (1 if node is owner else 0)
    finally:
        for _, viewer in viewers:
            await viewer.close()
        await publisher.pc.close()


async def test_a_relay_goes_node_to_node_never_through_the_load_balancer(start_cluster: StartCluster) -> None:
    # The first nginx (every node's public URL) sends everything to node 1; the second to node 0, the owner.
    cluster = await start_cluster(routes=[[1], [0]])
    owner, other = cluster.nodes
    to_other, to_owner = cluster.proxies
    creator = await cluster.signup()
    stream = await cluster.create_stream(creator["token"])
    publisher = await publish(cluster.http, to_owner.url, stream)
    viewer = await watch(cluster.http, to_other.url, stream["id"])
    try:
        assert publisher.status == 201 and viewer.status == 201, viewer.body
        await wait_for(lambda: len(viewer.video_pts) >= 10, WAIT_S_MAX)
        assert await cluster.metric(other, "livecore_media_rooms", role="relay") == 1
        assert await cluster.metric(owner, "livecore_media_viewers") == 1  # the relay
        offers = [r for r in to_other.requests() if r["method"] == "POST" and r["uri"].startswith("/whep/")]
        assert [r["node_mark"] for r in offers] == [""]  # the viewer's offer only: the relay's went node to node
        assert not any(r["node_mark"] for proxy in cluster.proxies for r in proxy.requests())
    finally:
        await viewer.close()
        await publisher.pc.close()


@pytest.mark.parametrize("owner_internal_url", ["{route0}", "http://127.0.0.1:1"],
                         ids=["leads-back-through-the-load-balancer", "leads-nowhere"])
async def test_a_failed_relay_is_answered_at_once_and_leaves_no_viewer(
    start_cluster: StartCluster, owner_internal_url: str
) -> None:
    # The owner's internal URL is wrong: the load balancer (which sends everything to the other node), or a closed
    # port. The relay that the other node tries fails; its viewer hears why at once and nothing is left behind.
    cluster = await start_cluster(routes=[[1], [0]], internal_urls={0: owner_internal_url})
    owner, other = cluster.nodes
    to_other, to_owner = cluster.proxies
    creator = await cluster.signup()
    stream = await cluster.create_stream(creator["token"])
    publisher = await publish(cluster.http, to_owner.url, stream)
    try:
        assert publisher.status == 201
        assert await _until(lambda: _state_is(cluster, stream["id"], "live")), "the publisher never connected"
        started = time.monotonic()
        viewer = await watch(cluster.http, to_other.url, stream["id"])
        answered_s = time.monotonic() - started
        print(f"failed relay answered {viewer.status} in {answered_s:.2f} s")
        assert viewer.status == 502, viewer.body
        problem = orjson.loads(viewer.body)
        assert problem["type"] == "livecore:relay-failed" and problem["hls_url"] == f"/hls/{stream['id']}/index.m3u8"
        assert owner.node_id in problem["detail"]
        if owner_internal_url == "{route0}":
            assert "leads back here" in problem["detail"]
            looped = [r for r in to_other.requests() if r["node_mark"]]
            assert [(r["node_mark"], r["status"]) for r in looped] == [(other.node_id, "508")]
        assert answered_s < NODE_REQUEST_TIMEOUT_S  # refused or unreachable: no timeout was waited out
        for node in cluster.nodes:
            assert await cluster.metric(node, "livecore_media_viewers") == 0
        assert await cluster.metric(other, "livecore_media_rooms", role="relay") == 0
    finally:
        await publisher.pc.close()
