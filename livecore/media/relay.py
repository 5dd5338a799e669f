"""A relay: a room this node pulls once from the node that has its publisher (the owner), for all of this node's
viewers of it. The pull is a WHEP offer to the owner's internal URL, marked as coming from this node; on the owner
the relay is one viewer, dropped when its node is gone."""

from __future__ import annotations

import logging

import orjson
from aiortc import RTCSessionDescription

from livecore.http import Problem
from livecore.media import peers
from livecore.media.cluster import NodeLink
from livecore.media.registry import MediaRegistry
from livecore.media.room import MediaRoom, TrackLimits

log = logging.getLogger("livecore.media.relay")


async def pull_from_owner(link: NodeLink, stream_id: int, owner: str, url: str, session: str,
                          limits: TrackLimits) -> MediaRoom:
    """A relay room for `stream_id`, pulled from node `owner` at `url`. Any failure is a 502 problem at once, and
    closes what was opened on both nodes: no viewer is left behind on the owner."""
    pc = peers.new_peer_connection()
    room = MediaRoom(stream_id, pc, session, relay_of=owner)
    session_url = ""
    try:
        for kind in ("video", "audio"):
            pc.addTransceiver(kind, direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        try:
            answer = await link.send("POST", f"{url}/whep/{stream_id}", body=pc.localDescription.sdp.encode(),
                                     headers={"Content-Type": "application/sdp"})
        except Problem as exc:
            raise _relay_failed(stream_id, owner, exc.detail) from exc
        if answer.status != 201:
            raise _relay_failed(stream_id, owner, f"it answered {answer.status}: {_detail(answer.body)}")
        session_url = f"{url}{answer.headers.get('Location', '')}"
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.body.decode(), type="answer"))
        except Exception as exc:
            raise _relay_failed(stream_id, owner, f"its answer was refused: {exc}") from exc
        room.tap_upstream(limits)
    except BaseException:
        await peers.close_peer(pc)
        if session_url:
            await _end_owner_session(link, session_url)
        raise
    log.info("stream %s: relaying from node %s", stream_id, owner)
    return room


async def drop_relays_to_gone_nodes(rooms: list[MediaRoom], registry: MediaRegistry) -> None:
    """On the owner: a relay to a node that stopped refreshing its registration (killed, crashed) goes within
    `media_owner_ttl_ms`, not when ICE gives up on it about half a minute later."""
    relays = [(room, session, viewer.relay_to) for room in rooms
              for session, viewer in room.viewers.items() if viewer.relay_to is not None]
    if not relays:
        return
    alive = await registry.live_nodes({node_id for _, _, node_id in relays if node_id})
    for room, session, node_id in relays:
        if node_id not in alive:
            log.info("stream %s: dropping the relay to node %s, which is gone", room.stream_id, node_id)
            await room.remove_viewer(session)


async def _end_owner_session(link: NodeLink, session_url: str) -> None:
    """The owner answered but the relay failed after: its viewer there goes now, not when ICE gives up."""
    try:
        await link.send("DELETE", session_url)
    except Problem as exc:
        log.warning("could not end the relay session %s: %s", session_url, exc.detail)


def _relay_failed(stream_id: int, owner: str, why: str) -> Problem:
    return Problem(502, "relay-failed", f"stream {stream_id} could not be relayed from its owner node {owner}: {why}",
                   hls_url=f"/hls/{stream_id}/index.m3u8")


def _detail(body: bytes) -> str:
    """What a problem+json answer says (its detail), or the start of any other body."""
    try:
        return str(orjson.loads(body)["detail"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return body[:200].decode(errors="replace")
