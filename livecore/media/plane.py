"""The media plane of one node: WHIP publishers, WHEP viewers, relays from owner nodes, and their upkeep."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from livecore.http import Problem
from livecore.media import peers
from livecore.media.cluster import NodeLink, new_session_id, session_node
from livecore.media.hls import MediaFiles, PlaylistWaits, StreamOutputs
from livecore.media.hlscache import HlsCache
from livecore.media.orphans import end_orphaned_streams
from livecore.media.ownercopies import CopiesOf, FileCopies, OwnerCopies, whole_seconds_mtimes
from livecore.media.registry import MediaRegistry
from livecore.media.relay import drop_relays_to_gone_nodes, pull_from_owner
from livecore.media.room import MediaRoom, SessionAnswer, TrackLimits, Viewer
from livecore.media.trickle import SessionIce, add_candidates, ice_ufrag
from livecore.media.viewerslots import ViewerSlots
from livecore.node import Node
from livecore.streams import end_overdue_streams, end_stream, get_stream, go_live
from livecore.streams import streams as stream_records
from livecore.tasks import stop_tasks

log = logging.getLogger("livecore.media")
MEDIA_COPIES = CopiesOf(kind="media", not_found="not-found", setting="media_cache_bytes_max")


class MediaPlane:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.settings = node.settings
        s = node.settings
        self.registry = MediaRegistry(node.redis, s.node_id, s.media_owner_ttl_ms)
        self.link = NodeLink(s.node_id, node.tokens, self.registry, s.node_request_timeout_ms,
                             s.node_answer_bytes_max)
        self.rooms: dict[int, MediaRoom] = {}
        self.outputs: dict[int, StreamOutputs] = {}
        self.playlists = PlaylistWaits()
        self.hls_cache = HlsCache(node.clock, s.hls_cache_bytes_max)
        self.copies = OwnerCopies(FileCopies(s.data_dir / "media-cache", s.media_cache_bytes_max, MEDIA_COPIES),
                                  s.node_request_timeout_ms, s.media_fetches_max)
        self.ice = peers.IceSettings.from_settings(s)
        self.viewer_slots = ViewerSlots(node.redis, s.node_id, s.media_owner_ttl_ms, node.clock)
        self._upkeep: asyncio.Task[None] | None = None
        self._relay_locks: dict[int, asyncio.Lock] = {}
        self._forwarded_closed = 0
        self._dropped_closed = 0
        node.registry.register(_MediaCollector(self))

    async def start(self) -> None:
        await self.link.start()
        await self.copies.start()
        await self.registry.refresh([], self.settings.internal_url)
        await end_orphaned_streams(self.node, self.registry)
        self._upkeep = asyncio.create_task(self._run_upkeep())

    async def stop(self) -> None:
        await stop_tasks(self._upkeep)
        for room in list(self.rooms.values()):
            await self.close_room(room, "node shutting down")  # its publisher may come back to another node
        with contextlib.suppress(Exception):
            await self.viewer_slots.release_all()
        with contextlib.suppress(Exception):
            await self.registry.leave([])
        await self.copies.stop()
        await self.link.stop()

    def viewers_on_node(self) -> int:
        return sum(room.viewer_count for room in self.rooms.values())

    def hls_url(self, stream_id: int) -> str:
        return f"/hls/{stream_id}/index.m3u8"

    async def publish(self, stream_id: int, bearer: str, offer_sdp: str) -> SessionAnswer:
        """A WHIP publisher: check the key, claim the room, answer. The stream goes live once it connects."""
        stream = await get_stream(self.node.pool, stream_id)
        if stream is None:
            raise Problem(404, "stream-not-found", f"there is no stream {stream_id}")
        _check_key(bearer, stream.stream_key)
        if stream.state == "ended":
            raise Problem(409, "stream-ended", "this stream has ended; create a new one to go live again")
        offer = peers.check_offer(offer_sdp)
        existing = self.rooms.get(stream_id)
        if (existing and not existing.closed) or not await self.registry.claim(stream_id):
            raise Problem(409, "already-publishing", "another publisher is live in this room")
        pc = peers.new_peer_connection(self.ice)
        room = MediaRoom(stream_id, pc, self._new_session(), creator_id=stream.creator_id, stream_key=stream.stream_key,
                         upstream_ice=SessionIce(ice_ufrag(offer_sdp)))
        self.rooms[stream_id] = room
        try:
            offered = peers.offered_kinds(offer.sdp)
            for kind, preferred in (("video", peers.VIDEO_PREFERENCE), ("audio", peers.AUDIO_PREFERENCE)):
                if kind not in offered:
                    continue  # a transceiver the offer does not match breaks aiortc's answer (camera, no mic)
                pc.addTransceiver(kind, direction="recvonly").setCodecPreferences(peers.preferences(kind, preferred))
            await peers.apply_offer(pc, offer)
            room.tap_upstream(TrackLimits.from_settings(self.settings))
            if not room.forwarders:
                raise Problem(400, "malformed-sdp", "the offer sends no audio or video this server can forward")
            answer = await peers.answer(pc)
            await stream_records.set_media_node(self.node.pool, stream_id, self.settings.node_id)
        except BaseException:
            self.rooms.pop(stream_id, None)
            await self.registry.release(stream_id)
            await peers.close_peer(pc)
            raise
        self._watch_upstream(room)
        self._start_outputs(room)
        log.info("stream %s: publisher answered with %s", stream_id,
                 ", ".join(f.codec.mimeType for f in room.forwarders.values()))
        return SessionAnswer(room.upstream_session, answer, room.upstream_ice.etag)

    async def _stream_key(self, stream_id: int) -> str | None:
        room = self.rooms.get(stream_id)
        if room is not None and room.relay_of is None:
            return room.stream_key
        stream = await get_stream(self.node.pool, stream_id)
        return stream.stream_key if stream else None

    async def key_matches(self, stream_id: int, bearer: str) -> bool:
        """Whether `bearer` is the stream's key (for answers only its publisher may see)."""
        key = await self._stream_key(stream_id) if bearer else None
        return bool(key) and hmac.compare_digest(bearer.encode(), key.encode())

    async def publisher_room(self, stream_id: int, session: str, bearer: str) -> MediaRoom:
        """The room of a WHIP session, for a request that carries the stream's key (401 before 404)."""
        key = await self._stream_key(stream_id)
        if key is None:
            raise Problem(404, "stream-not-found", f"there is no stream {stream_id}")
        _check_key(bearer, key)
        room = self.rooms.get(stream_id)
        if room is None or room.relay_of is not None or room.upstream_session != session or room.closed:
            raise Problem(404, "session-not-found", "there is no such publishing session")
        return room

    async def trickle(self, room: MediaRoom, fragment: str, if_match: str | None) -> None:
        """Trickled candidates from a WHIP publisher."""
        room.upstream_ice.check_patch(if_match, fragment)
        await add_candidates(room.upstream, fragment)

    async def unpublish(self, room: MediaRoom) -> None:
        """The publisher's DELETE: the stream ends for everyone."""
        await end_stream(self.node, room.stream_id, "the publisher sent DELETE")
        await self.close_room(room, "the publisher sent DELETE")  # already closed unless it had ended elsewhere

    async def stop_publishing(self, stream_id: int, reason: str) -> None:
        """The stream ended: close its publisher if this node has it.

        An owner on another node notices the ended state in its upkeep, within about a second.
        """
        room = self.rooms.get(stream_id)
        if room is not None and room.relay_of is None:
            await self.close_room(room, reason)

    async def sweep_streams(self) -> list[int]:
        """End the streams nobody published in time or whose publisher did not come back; returns their ids."""
        return await end_overdue_streams(self.node, self.registry.owned)

    def _new_session(self) -> str:
        return new_session_id(self.settings.node_id)

    async def watch(self, stream_id: int, offer_sdp: str, from_node: str | None = None) -> SessionAnswer:
        """A WHEP viewer: served from this node's room, or through a relay from the owner node. An offer from
        another node (`from_node`) is a relay's, served only from a room this node owns."""
        peers.check_offer(offer_sdp)
        if from_node is not None:
            return await self._answer_relay(stream_id, offer_sdp, from_node)
        room = self.rooms.get(stream_id)
        if room is None or room.closed:
            room = await self._relay_room(stream_id)
        self._check_capacity(room)
        limit = self.settings.media_viewers_per_room_max
        if not await self.viewer_slots.take(stream_id, limit):
            raise Problem(503, "over-capacity", f"this room has its {limit} WebRTC viewers (on all nodes); watch "
                          "over HLS", hls_url=self.hls_url(stream_id), limit="media_viewers_per_room_max",
                          limit_value=limit)
        try:
            answer = await room.add_viewer(offer_sdp, self._new_session(), ice=self.ice)
        except BaseException:
            await self.viewer_slots.give_back(stream_id)
            raise
        room.viewers[answer.session].holds_slot = True
        room.on_slot_freed = self.viewer_slots.give_back
        return answer

    async def _answer_relay(self, stream_id: int, offer_sdp: str, from_node: str) -> SessionAnswer:
        if from_node == self.settings.node_id:
            raise Problem(508, "relay-loop", f"this relay offer came from this node ({from_node}) itself: the "
                          "owner's internal_url leads back here")
        room = self.rooms.get(stream_id)
        if room is None or room.closed or room.relay_of is not None:
            raise Problem(409, "not-the-owner", f"node {self.settings.node_id} does not have stream {stream_id}'s "
                          "publisher; a relay pulls from the owner only")
        return await room.add_viewer(offer_sdp, self._new_session(), relay_to=from_node)

    async def holder_answer(self, request: web.Request) -> web.Response | None:
        """For a WHIP/WHEP session request: the answer of the node that holds the session when that is another
        node (a 404 when that node is gone), or None when this node answers it."""
        holder = session_node(request.match_info["session"])
        if holder is None or holder == self.settings.node_id or self.link.sender(request) is not None:
            return None
        answer = await self.link.pass_on(request, holder)
        if answer is None:
            raise Problem(404, "session-not-found", f"the node that held this session ({holder}) has gone away")
        return answer

    async def owner_answer(self, request: web.Request, stream_id: int) -> web.Response | None:
        """For an HLS request this node cannot serve: the owner's file (it makes them), fetched once and kept as
        long as the owner allows (see hlscache.py), or None when no other live node owns the stream."""
        if stream_id in self.outputs or self.link.sender(request) is not None:
            return None
        owner = await self.registry.owner(stream_id)
        if owner is None or owner == self.settings.node_id:
            return None
        base = await self.link.node_url(owner)
        if base is None:
            return None
        url = f"{base.rstrip('/')}{request.path}"
        # The owner may wait for the first segment before it answers a playlist request.
        timeout_s = (self.settings.hls_playlist_wait_ms_max + self.settings.node_request_timeout_ms) / 1000
        file = await self.hls_cache.get(f"{owner}{request.path}",
                                        lambda: self.link.send("GET", url, timeout_s=timeout_s))
        return web.Response(status=file.status, body=file.body,
                            headers=file.response_headers(self.node.clock.now_ms()))

    async def ended_copy(self, request: web.Request, stream_id: int, relative: str) -> Path | None:
        """For a media file of an ended stream that another node made: this node's copy of it (fetched once from that
        node, see ownercopies.py); None when the stream has not ended, this node made its files or the request
        comes from another node (which is answered from this node's disk only, so two nodes never send one request
        back and forth)."""
        if self.link.sender(request) is not None:
            return None
        found = await stream_records.media_node(self.node.pool, stream_id)
        if found is None or found[0] != "ended" or found[1] in (None, self.settings.node_id):
            return None
        return await self.copies.local_copy(self.link, found[1], f"{stream_id}/{relative}", request.path)

    def viewer(self, stream_id: int, session: str) -> Viewer:
        """A WHEP session on this node, or 404."""
        room = self.rooms.get(stream_id)
        viewer = room.viewers.get(session) if room is not None and not room.closed else None
        if viewer is None:
            raise Problem(404, "session-not-found", "there is no such viewing session")
        return viewer

    async def trickle_viewer(self, viewer: Viewer, fragment: str, if_match: str | None) -> None:
        """Trickled candidates from a WHEP viewer."""
        viewer.ice.check_patch(if_match, fragment)
        await add_candidates(viewer.pc, fragment)

    async def stop_watching(self, stream_id: int, session: str) -> None:
        room = self.rooms.get(stream_id)
        if room is None or not await room.remove_viewer(session):
            raise Problem(404, "session-not-found", "there is no such viewing session")

    def _check_capacity(self, room: MediaRoom) -> None:
        """The node's own limit; the room's is counted across nodes (`viewer_slots`)."""
        limit = self.settings.media_viewers_per_node_max
        if self.viewers_on_node() >= limit:
            raise Problem(503, "over-capacity", f"this node has its {limit} WebRTC viewers; watch over HLS",
                          hls_url=self.hls_url(room.stream_id), limit="media_viewers_per_node_max", limit_value=limit)

    async def close_room(self, room: MediaRoom, reason: str) -> None:
        """Close a room. When this node owned it, its publisher is gone: the stream stays live for the reconnect
        grace (unless it has ended), and then the sweep ends it."""
        if room.closed:
            return
        left_ms = self.node.clock.now_ms()
        log.info("stream %s: room closing (%s)", room.stream_id, reason)
        if self.rooms.get(room.stream_id) is room:
            del self.rooms[room.stream_id]
        self._forwarded_closed += sum(f.packets_forwarded for f in room.forwarders.values())
        self._dropped_closed += sum(f.packets_dropped for f in room.forwarders.values())
        if room.relay_of is None:
            room.closed_reason = reason
            try:
                await self.registry.release(room.stream_id)
                deadline_ms = left_ms + self.settings.media_publish_grace_ms
                await stream_records.publisher_left(self.node.pool, room.stream_id, deadline_ms)
            except Exception:
                log.exception("stream %s: could not record that its publisher left", room.stream_id)
        await room.close()

    def _watch_upstream(self, room: MediaRoom) -> None:
        pc = room.upstream

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState == "connected" and not room.connected:
                room.connected = True
                if room.relay_of is None and not await go_live(self.node, room.stream_id):
                    await self.close_room(room, "the stream had ended")
            elif pc.connectionState in ("failed", "closed") and not room.closed:
                await self.close_room(room, f"upstream {pc.connectionState}")

    def files(self, stream_id: int) -> MediaFiles:
        return MediaFiles(self.settings.data_dir / "media" / str(stream_id))

    async def wait_for_playlist(self, stream_id: int) -> bool:
        """Wait (at most `hls_playlist_wait_ms_max`) for the first playlist of a stream that has not ended; True
        once it is there. A player that starts with the stream gets the playlist instead of a 404."""
        if self.files(stream_id).playlist.is_file():
            return True
        if stream_id not in self.outputs:
            stream = await get_stream(self.node.pool, stream_id)
            if stream is None or stream.state == "ended":
                return False
            if self.files(stream_id).playlist.is_file():  # written while the database answered
                return True
        written = await self.playlists.wait(stream_id, self.settings.hls_playlist_wait_ms_max / 1000)
        return written and self.files(stream_id).playlist.is_file()

    def _start_outputs(self, room: MediaRoom) -> None:
        """HLS, recording and thumbnail for a room this node owns, made once however many watch."""
        settings = self.settings
        loop = asyncio.get_running_loop()
        outputs = StreamOutputs(self.files(room.stream_id), room.forwarders, settings.hls_segment_ms,
                                settings.hls_window_segments, settings.recording_enabled,
                                settings.thumbnail_interval_ms,
                                on_playlist=lambda: loop.call_soon_threadsafe(self.playlists.written, room.stream_id))
        self.outputs[room.stream_id] = outputs

        async def finish() -> None:
            await asyncio.to_thread(outputs.close)
            del self.outputs[room.stream_id]
            # Final now: other nodes' copies of these files get the same ETag (see ownercopies.py; one copied before
            # this has this file's Last-Modified, the same whole second). Before the recording is announced.
            await asyncio.to_thread(whole_seconds_mtimes, self.files(room.stream_id).directory)
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
            url = await self.link.node_url(owner)
            if url is None:
                raise Problem(503, "owner-unreachable", f"the node that owns stream {stream_id} ({owner}) is not "
                              "registered any more", hls_url=self.hls_url(stream_id))
            room = await pull_from_owner(self.link, stream_id, owner, url.rstrip("/"), self._new_session(),
                                         TrackLimits.from_settings(self.settings))
            self.rooms[stream_id] = room
            self._watch_upstream(room)
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
        await self.registry.refresh(owned, self.settings.internal_url)
        await self.viewer_slots.refresh()
        if owned:
            connected = [r.stream_id for r in self.rooms.values() if r.relay_of is None and r.connected]
            now_ms = self.node.clock.now_ms()
            grace_ms = self.settings.media_publish_grace_ms
            ended = await stream_records.renew_publishers(self.node.pool, owned, connected, now_ms + grace_ms,
                                                          now_ms + grace_ms // 2)
            for stream_id in ended:
                await self.stop_publishing(stream_id, "the stream was ended on another node")
        await self.sweep_streams()
        await drop_relays_to_gone_nodes(list(self.rooms.values()), self.registry)
        ingest_timeout_s = self.settings.media_ingest_timeout_ms / 1000
        for room in list(self.rooms.values()):
            for forwarder in room.forwarders.values():
                forwarder.send_sender_reports()
            await self._refresh_outputs(room)
            if room.last_packet_age_s() > ingest_timeout_s:
                await self.close_room(room, f"no media for {ingest_timeout_s:g} s")
            elif room.relay_of is not None:
                await self._close_idle_relay(room)

    async def _close_idle_relay(self, room: MediaRoom) -> None:
        now_s = asyncio.get_running_loop().time()
        if room.viewers:
            room.idle_since_s = None
        elif room.idle_since_s is None:
            room.idle_since_s = now_s
        elif now_s - room.idle_since_s > self.settings.media_relay_idle_ms / 1000:
            await self.close_room(room, "relay without viewers")

    def packets_forwarded(self) -> int:
        live = sum(f.packets_forwarded for r in self.rooms.values() for f in r.forwarders.values())
        return self._forwarded_closed + live

    def packets_dropped(self) -> int:
        live = sum(f.packets_dropped for r in self.rooms.values() for f in r.forwarders.values())
        return self._dropped_closed + live


def _check_key(bearer: str, stream_key: str) -> None:
    if not bearer:
        raise Problem(401, "bad-stream-key", "send the stream key as `Authorization: Bearer <key>`")
    if not hmac.compare_digest(bearer.encode(), stream_key.encode()):
        raise Problem(401, "bad-stream-key", "the bearer token is not this stream's key")


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
        fetches = CounterMetricFamily("livecore_media_hls_owner_fetches",
                                      "HLS files this node fetched from the node that owns the stream")
        fetches.add_metric([], plane.hls_cache.fetches)
        yield fetches
        hits = CounterMetricFamily("livecore_media_hls_cache_hits",
                                   "HLS requests for another node's stream answered without a fetch of their own")
        hits.add_metric([], plane.hls_cache.hits)
        yield hits
        cached = GaugeMetricFamily("livecore_media_hls_cache_bytes", "bytes of other nodes' HLS files kept here")
        cached.add_metric([], plane.hls_cache.stored_bytes)
        yield cached
        copied = CounterMetricFamily("livecore_media_file_copies", "files of ended streams (recordings, thumbnails, "
                                     "HLS) this node fetched from the node that made them")
        copied.add_metric([], plane.copies.copies.fetches)
        yield copied
        kept = GaugeMetricFamily("livecore_media_file_copies_bytes", "bytes of other nodes' ended streams' files "
                                 "kept on this node's disk")
        kept.add_metric([], plane.copies.copies.stored_bytes)
        yield kept
