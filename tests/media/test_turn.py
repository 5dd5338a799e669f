"""Viewers behind NAT, through Debian's coturn: the node advertises its TURN server (Link headers) and uses it for
its own peers; a viewer whose ICE policy is `relay` (as behind a NAT no host candidate crosses) watches through an
allocation, while a direct viewer keeps the forwarder's own-socket send path."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from mediapeers import Viewer, _consume, publish, wait_for, watch
from turnserver import Coturn

from livecore.media import MEDIA
from livecore.media.peers import PEER_CLOSE_S_MAX


# Tests take `coturn` before `node_factory`, so the node stops (deleting its allocations) before the relay does.
@pytest.fixture
def coturn(tmp_path):  # type: ignore[no-untyped-def]
    server = Coturn(tmp_path / "coturn").start()
    try:
        yield server
    finally:
        server.stop()


async def _advertised_ice_servers(http, url: str) -> list[RTCIceServer]:  # type: ignore[no-untyped-def]
    """The ICE servers a WHEP endpoint advertises in its Link headers (RFC 9725 section 4.6)."""
    async with http.options(url) as response:
        assert response.status == 204
        links = [value for name, value in response.headers.items() if name.lower() == "link"]
    servers = []
    for link in links:
        target, *params = [part.strip() for part in link.split(";")]
        fields = dict(param.split("=", 1) for param in params)
        assert fields["rel"] == '"ice-server"'
        servers.append(RTCIceServer(urls=target.strip("<>"), username=fields.get("username", "").strip('"'),
                                    credential=fields.get("credential", "").strip('"')))
    return servers


async def _watch_through_relay(http, url: str, servers: list[RTCIceServer]) -> Viewer:  # type: ignore[no-untyped-def]
    pc = RTCPeerConnection(RTCConfiguration(iceServers=servers, iceTransportPolicy=RTCIceTransportPolicy.RELAY))
    pc.addTransceiver("video", direction="recvonly")
    viewer = Viewer(pc, 0)
    pc.on("track", lambda track: viewer.tasks.append(asyncio.ensure_future(_consume(viewer, track))))
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    assert "typ relay" in sdp and "typ host" not in sdp  # all this viewer can offer is its TURN allocation
    async with http.post(url, data=sdp, headers={"Content-Type": "application/sdp"}) as response:
        viewer.status, viewer.body = response.status, await response.text()
        viewer.location = response.headers.get("Location", "")
    assert viewer.status == 201, viewer.body
    await pc.setRemoteDescription(RTCSessionDescription(sdp=viewer.body, type="answer"))
    return viewer


def _nominated(pc: RTCPeerConnection):  # type: ignore[no-untyped-def]
    transport = pc.getTransceivers()[0].receiver.transport.transport
    return transport._connection._nominated[1]


async def test_a_viewer_behind_nat_watches_through_turn_and_direct_viewers_keep_the_fast_path(
        coturn, node_factory, http):  # type: ignore[no-untyped-def]
    node = await node_factory(media_ice_servers=coturn.url, media_ice_username=coturn.username,
                              media_ice_credential=coturn.password)
    account = await node.signup(roles=["creator"])
    stream = await node.create_stream(account["token"], live=False)
    publisher = await publish(http, node.url, stream)
    assert publisher.status == 201
    whep = f"{node.url}/whep/{stream['id']}"
    viewers: list[Viewer] = []
    try:
        servers = await _advertised_ice_servers(http, whep)
        assert [(s.urls, s.username, s.credential) for s in servers] == [
            (coturn.url, coturn.username, coturn.password)]
        behind_nat = await _watch_through_relay(http, whep, servers)
        viewers.append(behind_nat)
        direct = await watch(http, node.url, stream["id"], kinds=("video",))
        viewers.append(direct)
        assert direct.status == 201, direct.body
        answer = behind_nat.body
        assert "typ relay" in answer  # the node gathered from the TURN server too
        await wait_for(lambda: len(behind_nat.video_pts) >= 15 and len(direct.video_pts) >= 15, 30)
        assert behind_nat.video_pts == sorted(behind_nat.video_pts)
        assert _nominated(behind_nat.pc).local_candidate.type == "relay"  # its media came through coturn

        room = node.app[MEDIA].rooms[stream["id"]]
        session = direct.location.rsplit("/", 1)[-1]
        [(_, outlet)] = room.viewers[session].outlets
        assert outlet.sock is not None  # the direct viewer: its own descriptor of the ICE socket, GSO sends
        local = _nominated(direct.pc).local_candidate
        assert outlet.addr == (local.host, local.port) and local.type == "host"
    finally:
        for viewer in viewers:
            await viewer.close()
        await publisher.pc.close()


async def test_a_node_that_only_relays_sends_through_its_turn_allocation(coturn, node_factory, http):  # type: ignore[no-untyped-def]
    node = await node_factory(media_ice_servers=coturn.url, media_ice_username=coturn.username,
                              media_ice_credential=coturn.password, media_ice_transport_policy="relay")
    account = await node.signup(roles=["creator"])
    stream = await node.create_stream(account["token"], live=False)
    publisher = await publish(http, node.url, stream)
    assert publisher.status == 201
    viewer = await watch(http, node.url, stream["id"], kinds=("video",))
    try:
        assert viewer.status == 201, viewer.body
        assert "typ relay" in viewer.body and "typ host" not in viewer.body
        await wait_for(lambda: len(viewer.video_pts) >= 15, 30)
        assert viewer.video_pts == sorted(viewer.video_pts)
        room = node.app[MEDIA].rooms[stream["id"]]
        [(forwarder, outlet)] = room.viewers[viewer.location.rsplit("/", 1)[-1]].outlets
        assert outlet.sock is None and not outlet.gso  # packet by packet through aioice's TURN transport
        assert forwarder.packets_forwarded > 0 and forwarder.send_errors == 0
        assert _nominated(viewer.pc).remote_candidate.type == "relay"
    finally:
        await viewer.close()
        await publisher.pc.close()


async def test_a_viewer_leaves_promptly_when_the_turn_server_has_died(coturn, node_factory, http):  # type: ignore[no-untyped-def]
    """Ending a session deletes the node's TURN allocation; aioice retries that for about a minute against a dead
    relay. The node gives up after PEER_CLOSE_S_MAX (the allocation expires) so the DELETE still answers."""
    node = await node_factory(media_ice_servers=coturn.url, media_ice_username=coturn.username,
                              media_ice_credential=coturn.password, media_ice_transport_policy="relay")
    account = await node.signup(roles=["creator"])
    stream = await node.create_stream(account["token"], live=False)
    publisher = await publish(http, node.url, stream)
    viewer = await watch(http, node.url, stream["id"], kinds=("video",))
    try:
        assert viewer.status == 201, viewer.body
        await wait_for(lambda: len(viewer.video_pts) >= 5, 30)
        coturn.stop()
        session_url = f"{node.url}{viewer.location}"
        async with asyncio.timeout(PEER_CLOSE_S_MAX + 10):  # aioice alone would retry for about 63 s
            async with http.delete(session_url) as response:
                assert response.status == 200, await response.text()
        assert viewer.location.rsplit("/", 1)[-1] not in node.app[MEDIA].rooms[stream["id"]].viewers
    finally:
        await viewer.close()
        await publisher.pc.close()
