"""The media plane of one node: WHIP publishers, WHEP viewers, relays from owner nodes, and their upkeep."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from typing import Any

import aiohttp
from aiortc import RTCSessionDescription
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from livecore.http import Problem
from livecore.media import peers
from livecore.media.hls import MediaFiles, StreamOutputs
from livecore.media.orphans import end_orphaned_streams
from livecore.media.registry import MediaRegistry
from livecore.media.room import MediaRoom, session_id
from livecore.node import Node
from livecore.streams import get_stream
from livecore.streams import streams as stream_records
from livecore.tasks import stop_tasks

log = logging.getLogger("livecore.media")

RELAY_HEADER = "X-Livecore-Relay"


class MediaPlane:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.settings = node.settings
        self.registry = MediaRegistry(node.redis, node.settings.node_id, node.settings.media_owner_ttl_ms)
        self.rooms: dict[int, MediaRoom] = {}
        self.outputs: dict[int, StreamOutputs] = {}
        self._http: aiohttp.ClientSession | None = None
        self._upkeep: asyncio.Task[None] | None = None
        self._relay_locks: dict[int, asyncio.Lock] = {}
        self._forwarded_closed = 0
        self._dropped_closed = 0
        node.registry.register(_MediaCollector(self))

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        await self.registry.refresh([], self.settings.public_url)
        await end_orphaned_streams(self.node, self.registry)
        self._upkeep = asyncio.create_task(self._run_upkeep())

    async def stop(self) -> None:
        await stop_tasks(self._upkeep)
        for room in list(self.rooms.values()):
            await self.end_room(room, "node shutting down")
        with contextlib.suppress(Exception):
            await self.registry.leave([])
        if self._http:
            await self._http.close()

    def viewers_on_node(self) -> int:
        return sum(room.viewer_count for room in self.rooms.values())

    def hls_url(self, stream_id: int) -> str:
        return f"/hls/{stream_id}/index.m3u8"

    async def publish(self, stream_id: int, bearer: str, offer_sdp: str) -> tuple[str, str]:
        """A WHIP publisher: check the key, claim the room, answer; returns (session id, SDP answer)."""
        stream = await get_stream(self.node.pool, stream_id)
        if stream is None:
            raise Problem(404, "stream-not-found", f"there is no stream {stream_id}")
        if not bearer or not hmac.compare_digest(bearer.encode(), stream.stream_key.encode()):
            raise Problem(401, "bad-stream-key", "the bearer token is not this stream's key")
        if stream.state == "ended":
            raise Problem(409, "stream-ended", "this stream has ended; create a new one to go live again")
        offer = peers.check_offer(offer_sdp)
        existing = self.rooms.get(stream_id)
        if (existing and not existing.closed) or not await self.registry.claim(stream_id):
            raise Problem(409, "already-publishing", "another publisher is live in this room")
        pc = peers.new_peer_connection()
        room = MediaRoom(stream_id, pc, session_id(), creator_id=stream.creator_id)
        self.rooms[stream_id] = room
        try:
            offered = peers.offered_kinds(offer.sdp)
            for kind, preferred in (("video", peers.VIDEO_PREFERENCE), ("audio", peers.AUDIO_PREFERENCE)):
                if kind not in offered:
                    continue  # a transceiver the offer does not match breaks aiortc's answer (camera, no mic)
                pc.addTransceiver(kind, direction="recvonly").setCodecPreferences(peers.preferences(kind, preferred))
            await peers.apply_offer(pc, offer)
            room.tap_upstream(self.settings.media_history_packets, self.settings.media_keyframe_interval_ms / 1000)
            if not room.forwarders:
                raise Problem(400, "malformed-sdp", "the offer sends no audio or video this server can forward")
            answer = await peers.answer(pc)
        except BaseException:
            self.rooms.pop(stream_id, None)
            await self.registry.release(stream_id)
            await pc.close()
            raise
        self._watch_upstream(room)
        self._start_outputs(room)
        if self.node.rooms:
            await self.node.rooms.publish(stream_id, {"type": "stream", "state": "live"})
        log.info("stream %s: publisher connected with %s", stream_id,
                 ", ".join(f.codec.mimeType for f in room.forwarders.values()))
        return room.upstream_session, answer

    def publisher_room(self, stream_id: int, session: str) -> MediaRoom:
        room = self.rooms.get(stream_id)
        if room is None or room.relay_of is not None or room.upstream_session != session or room.closed:
            raise Problem(404, "session-not-found", "there is no such publishing session")
        return room

    async def trickle(self, stream_id: int, session: str, fragment: str) -> None:
        await peers.add_trickle(self.publisher_room(stream_id, session).upstream, fragment)

    async def unpublish(self, stream_id: int, session: str) -> None:
        await self.end_room(self.publisher_room(stream_id, session), "the publisher sent DELETE")

    async def stop_publishing(self, stream_id: int, reason: str) -> None:
        """The stream ended outside WHIP (the API): close its publisher if this node owns it.

        An owner on another node notices the ended state in its upkeep, within about a second.
        """
        room = self.rooms.get(stream_id)
        if room is not None and room.relay_of is None:
            await self.end_room(room, reason)

    async def watch(self, stream_id: int, offer_sdp: str, relay: bool = False) -> tuple[str, str]:
        """A WHEP viewer: served from this node's room, or through a relay from the owner node."""
        peers.check_offer(offer_sdp)
        room = self.rooms.get(stream_id)
        if room is None or room.closed:
            room = await self._relay_room(stream_id)
        if not relay:
            self._check_capacity(room)
        return await room.add_viewer(offer_sdp)

    async def stop_watching(self, stream_id: int, session: str) -> None:
        room = self.rooms.get(stream_id)
        if room is None or not await room.remove_viewer(session):
            raise Problem(404, "session-not-found", "there is no such viewing session")

    def _check_capacity(self, room: MediaRoom) -> None:
        limits = (
            (room.viewer_count, self.settings.media_viewers_per_room_max, "media_viewers_per_room_max", "room"),
            (self.viewers_on_node(), self.settings.media_viewers_per_node_max, "media_viewers_per_node_max", "node"),
        )
        for count, limit, name, scope in limits:
            if count >= limit:
                raise Problem(503, "over-capacity", f"this {scope} has its {limit} WebRTC viewers; watch over HLS",
                              hls_url=self.hls_url(room.stream_id), limit=name, limit_value=limit)

    async def end_room(self, room: MediaRoom, reason: str) -> None:
        """Close a room; when this node owned it, the stream ends for everyone."""
        if room.closed:
            return
        log.info("stream %s: room closing (%s)", room.stream_id, reason)
        if self.rooms.get(room.stream_id) is room:
            del self.rooms[room.stream_id]
        self._forwarded_closed += sum(f.packets_forwarded for f in room.forwarders.values())
        self._dropped_closed += sum(f.packets_dropped for f in room.forwarders.values())
        if room.relay_of is None:
            room.closed_reason = reason
            try:
                await self._end_stream(room.stream_id)
            except Exception:
                log.exception("stream %s: could not record its end", room.stream_id)
        await room.close()

    async def _end_stream(self, stream_id: int) -> None:
        """The owner's publisher is gone: the stream ends for everyone, on every node."""
        await self.registry.release(stream_id)
        stream = await stream_records.get_stream(self.node.pool, stream_id)
        if stream is not None and stream.state != "ended":
            await stream_records.end_stream(self.node.pool, stream_id, stream.creator_id)
            if self.node.rooms:
                await self.node.rooms.publish(stream_id, {"type": "stream", "state": "ended"})

    def _watch_upstream(self, room: MediaRoom) -> None:
        pc = room.upstream

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState == "connected":
                room.connected = True
            elif pc.connectionState in ("failed", "closed") and not room.closed:
                await self.end_room(room, f"upstream {pc.connectionState}")

    def files(self, stream_id: int) -> MediaFiles:
        return MediaFiles(self.settings.data_dir / "media" / str(stream_id))

    def _start_outputs(self, room: MediaRoom) -> None:
        """HLS, recording and thumbnail for a room this node owns, made once however many watch."""
        settings = self.settings
        outputs = StreamOutputs(self.files(room.stream_id), room.forwarders, settings.hls_segment_ms,
                                settings.hls_window_segments, settings.recording_enabled,
                                settings.thumbnail_interval_ms)
        self.outputs[room.stream_id] = outputs

        async def finish() -> None:
            await asyncio.to_thread(outputs.close)
            del self.outputs[room.stream_id]
            if outputs.recorded:
                await stream_records.set_media_urls(self.node.pool, room.stream_id,
                                                    recording_url=f"/media/{room.stream_id}/recording.mp4")

        room.on_close.append(finish)

    async def _refresh_outputs(self, room: MediaRoom) -> None:
        outputs = self.outputs.get(room.stream_id)
        if outputs is None:
            return
        video = room.forwarders.get("video")
        now_s = asyncio.get_running_loop().time()
        if video is not None and now_s - room.hls_keyframe_s >= self.settings.hls_segment_ms / 1000:
            room.hls_keyframe_s = now_s  # H.264 is remuxed: segments can only be cut where the publisher sent one
            video.keyframes.request()
        if outputs.thumbnails and not room.thumbnail_saved:
            room.thumbnail_saved = True
            await stream_records.set_media_urls(self.node.pool, room.stream_id,
                                                thumbnail_url=f"/media/{room.stream_id}/thumbnail.jpg")

    async def _relay_room(self, stream_id: int) -> MediaRoom:
        """Pull a stream owned by another node once, for all of this node's viewers of it."""
        lock = self._relay_locks.setdefault(stream_id, asyncio.Lock())
        async with lock:
            room = self.rooms.get(stream_id)
            if room is not None and not room.closed:
                return room
            owner = await self.registry.owner(stream_id)
            if owner is None or owner == self.settings.node_id:
                raise Problem(404, "stream-not-live", f"stream {stream_id} has no publisher right now",
                              hls_url=self.hls_url(stream_id))
            url = await self.registry.node_url(owner)
            if url is None:
                raise Problem(503, "owner-unreachable", f"the node that owns stream {stream_id} is not reachable",
                              hls_url=self.hls_url(stream_id))
            room = await self._pull(stream_id, owner, url)
            self.rooms[stream_id] = room
            self._watch_upstream(room)
            return room

    async def _pull(self, stream_id: int, owner: str, url: str) -> MediaRoom:
        assert self._http is not None
        pc = peers.new_peer_connection()
        room = MediaRoom(stream_id, pc, session_id(), relay_of=owner)
        try:
            for kind in ("video", "audio"):
                pc.addTransceiver(kind, direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            headers = {"Content-Type": "application/sdp", RELAY_HEADER: self.settings.node_id}
            async with self._http.post(f"{url}/whep/{stream_id}", data=pc.localDescription.sdp,
                                       headers=headers) as response:
                body = await response.text()
                if response.status != 201:
                    raise Problem(502, "relay-failed", f"the owner node answered {response.status}: {body[:200]}")
            await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
            room.tap_upstream(self.settings.media_history_packets, self.settings.media_keyframe_interval_ms / 1000)
        except BaseException:
            await pc.close()
            raise
        log.info("stream %s: relaying from node %s", stream_id, owner)
        return room

    async def _run_upkeep(self) -> None:
        while True:
            await asyncio.sleep(1)
            try:
                await self._upkeep_once()
            except Exception:
                log.exception("media upkeep failed")

    async def _upkeep_once(self) -> None:
        owned = [r.stream_id for r in self.rooms.values() if r.relay_of is None]
        await self.registry.refresh(owned, self.settings.public_url)
        if owned:
            ended = await self.node.pool.fetch("SELECT id FROM streams WHERE id = ANY($1) AND state = 'ended'", owned)
            for row in ended:
                await self.stop_publishing(row["id"], "the stream was ended on another node")
        ingest_timeout_s = self.settings.media_ingest_timeout_ms / 1000
        for room in list(self.rooms.values()):
            for forwarder in room.forwarders.values():
                forwarder.send_sender_reports()
            await self._refresh_outputs(room)
            if room.last_packet_age_s() > ingest_timeout_s:
                await self.end_room(room, f"no media for {ingest_timeout_s:g} s")
            elif room.relay_of is not None:
                await self._close_idle_relay(room)

    async def _close_idle_relay(self, room: MediaRoom) -> None:
        now_s = asyncio.get_running_loop().time()
        if room.viewers:
            room.idle_since_s = None
        elif room.idle_since_s is None:
            room.idle_since_s = now_s
        elif now_s - room.idle_since_s > self.settings.media_relay_idle_ms / 1000:
            await self.end_room(room, "relay without viewers")

    def packets_forwarded(self) -> int:
        live = sum(f.packets_forwarded for r in self.rooms.values() for f in r.forwarders.values())
        return self._forwarded_closed + live

    def packets_dropped(self) -> int:
        live = sum(f.packets_dropped for r in self.rooms.values() for f in r.forwarders.values())
        return self._dropped_closed + live


class _MediaCollector:
    """Media figures for /metrics, read from the plane's plain counters (the hot path never touches a lock)."""

    def __init__(self, plane: MediaPlane) -> None:
        self._plane = plane

    def collect(self) -> Any:
        plane = self._plane
        forwarded = CounterMetricFamily("livecore_media_packets_forwarded", "RTP packets written to viewers")
        forwarded.add_metric([], plane.packets_forwarded())
        yield forwarded
        dropped = CounterMetricFamily("livecore_media_packets_dropped",
                                      "RTP packets not written because a viewer's socket buffer was full")
        dropped.add_metric([], plane.packets_dropped())
        yield dropped
        rooms = GaugeMetricFamily("livecore_media_rooms", "media rooms on this node", labels=["role"])
        rooms.add_metric(["owner"], sum(1 for r in plane.rooms.values() if r.relay_of is None))
        rooms.add_metric(["relay"], sum(1 for r in plane.rooms.values() if r.relay_of is not None))
        yield rooms
        viewers = GaugeMetricFamily("livecore_media_viewers", "WebRTC viewers on this node")
        viewers.add_metric([], plane.viewers_on_node())
        yield viewers
