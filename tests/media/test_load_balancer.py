"""Two `livecore serve` nodes behind Debian's nginx (round-robin, the README's configuration), driven only through
nginx: every WHIP and WHEP request works whichever node it lands on, relays go node to node and never through the
load balancer, a failed relay is answered at once and leaves nothing behind, and viewer counts stay right while a
killed node's presence expires. Which node answered is read from nginx's access log and the session ids."""

from __future__ import annotations

import asyncio
import time

from aiortc import RTCSessionDescription
from lbcluster import LbCluster, StartCluster
from mediapeers import trickled_whip_offer, wait_for
from servenode import Serve

SDP = {"Content-Type": "application/sdp"}
FRAGMENT = {"Content-Type": "application/trickle-ice-sdpfrag"}
WAIT_S_MAX = 20.0
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


def _upstreams(cluster: LbCluster, method: str, path_start: str) -> set[str]:
    return {r["upstream"] for r in cluster.nginx.requests()
            if r["method"] == method and r["uri"].startswith(path_start)}


async def _steer_next_request_to(cluster: LbCluster, node: Serve) -> None:
    """Round-robin over two nodes: when the last request went to `node`, one cheap request moves the next to it."""
    if cluster.last_upstream() == f"127.0.0.1:{node.port}":
        async with cluster.http.get(f"{cluster.url}/healthz") as response:
            assert response.status == 200


async def test_whip_trickle_and_delete_work_whichever_node_they_reach(start_cluster: StartCluster) -> None:
    cluster = await start_cluster()
    creator = await cluster.signup()
    stream = await cluster.create_stream(creator["token"])
    pc, location, etag = await _publish_trickled(cluster, stream)
    try:
        holder = cluster.node_of_session(location)
        patched_on = _upstreams(cluster, "PATCH", f"/whip/{stream['id']}/")
        assert patched_on == {f"127.0.0.1:{node.port}" for node in cluster.nodes}, patched_on
        assert await _until(lambda: _state_is(cluster, stream["id"], "live")), "the publisher never connected"

        # The session's node answers refusals too, whichever node got the request: another entity tag, a wrong key.
        for node in cluster.nodes:
            await _steer_next_request_to(cluster, node)
            async with cluster.http.patch(f"{cluster.url}{location}", data="a=end-of-candidates\r\n", headers={
                    **FRAGMENT, "Authorization": f"Bearer {stream['stream_key']}", "If-Match": '"other"'}) as r:
                assert r.status == 412 and (await r.json())["etag"] == etag
            await _steer_next_request_to(cluster, node)
            async with cluster.http.delete(f"{cluster.url}{location}", headers={"Authorization": "Bearer wrong"}) as r:
                assert r.status == 401 and r.content_type == "application/problem+json"
        assert _upstreams(cluster, "DELETE", location) == _upstreams(cluster, "PATCH", location)

        other = next(node for node in cluster.nodes if node is not holder)
        await _steer_next_request_to(cluster, other)
        async with cluster.http.delete(f"{cluster.url}{location}",
                                       headers={"Authorization": f"Bearer {stream['stream_key']}"}) as response:
            assert response.status == 200, await response.text()
        assert cluster.last_upstream() == f"127.0.0.1:{other.port}"  # the DELETE that ended it reached the other node
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
