"""A media room on this node: one upstream peer (the publisher, or the owner node for a relay), its forwarders,
and the viewers' peers that the forwarders write to."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCPeerConnection

from livecore.media import peers
from livecore.media.forwarder import Forwarder, KeyframeRequests
from livecore.media.gopcache import GopCache
from livecore.media.outlet import Outlet
from livecore.media.trickle import SessionIce, ice_ufrag

log = logging.getLogger("livecore.media.room")


@dataclass(frozen=True)
class SessionAnswer:
    """A new WHIP or WHEP session: its id (the last part of its URL), the SDP answer and its entity tag."""

    session: str
    sdp: str
    etag: str


@dataclass(frozen=True)
class TrackLimits:
    """What each forwarded track of a room keeps: NACK history, keyframe request spacing, the cached group."""

    history_packets: int
    keyframe_interval_s: float
    gop_cache_packets_max: int = 0
    gop_cache_bytes_max: int = 0

    @classmethod
    def from_settings(cls, settings: Any) -> TrackLimits:
        return cls(settings.media_history_packets, settings.media_keyframe_interval_ms / 1000,
                   settings.media_gop_cache_packets_max, settings.media_gop_cache_bytes_max)


@dataclass
class Viewer:
    pc: RTCPeerConnection
    outlets: list[tuple[Forwarder, Outlet]]
    ice: SessionIce
    connected: bool = False
    relay_to: str | None = None  # the node this viewer relays the room to, when it is another node's relay
    holds_slot: bool = False  # counted against media_viewers_per_room_max (a relay to another node is not)


@dataclass
class MediaRoom:
    stream_id: int
    upstream: RTCPeerConnection
    upstream_session: str
    relay_of: str | None = None  # the owner node id when this room pulls the stream from another node
    creator_id: int = 0
    stream_key: str = ""  # the publisher's bearer secret, checked on its session's PATCH and DELETE
    upstream_ice: SessionIce = field(default_factory=lambda: SessionIce(""))
    forwarders: dict[str, Forwarder] = field(default_factory=dict)
    viewers: dict[str, Viewer] = field(default_factory=dict)
    started_s: float = field(default_factory=time.monotonic)
    connected: bool = False
    closed: bool = False
    idle_since_s: float | None = None
    hls_keyframe_s: float = 0.0
    thumbnail_saved: bool = False
    closed_reason: str = ""
    on_close: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_slot_freed: Callable[[int], Awaitable[None]] | None = None  # a viewer holding a room slot is gone

    @property
    def viewer_count(self) -> int:
        return len(self.viewers)

    def tap_upstream(self, limits: TrackLimits) -> None:
        """Give each negotiated upstream track a forwarder and tap its receiver."""
        for transceiver in self.upstream.getTransceivers():
            codec = peers.media_codec(transceiver)
            if codec is None or transceiver.kind in self.forwarders:
                continue
            forwarder = Forwarder(transceiver.kind, codec, limits.history_packets,
                                  KeyframeRequests(limits.keyframe_interval_s, lambda: None),
                                  GopCache(limits.gop_cache_packets_max, limits.gop_cache_bytes_max))
            peers.tap_receiver(transceiver, forwarder)
            self.forwarders[transceiver.kind] = forwarder

    async def add_viewer(self, offer_sdp: str, session: str, relay_to: str | None = None,
                         ice: peers.IceSettings | None = None) -> SessionAnswer:
        """Answer a viewer's offer with this room's tracks, as session `session` (of node `relay_to`'s relay),
        gathering candidates from `ice`'s servers too (TURN for viewers no host candidate reaches)."""
        offer = peers.check_offer(offer_sdp)
        pc = peers.new_peer_connection(ice)
        try:
            offered = peers.offered_kinds(offer.sdp)
            for kind, forwarder in self.forwarders.items():
                if kind not in offered:
                    continue  # a transceiver the offer does not match breaks aiortc's answer (a video-only player)
                transceiver = pc.addTransceiver(peers.SilentTrack(kind), direction="sendonly")
                transceiver.setCodecPreferences(peers.exact_preference(forwarder.codec))
            await peers.apply_offer(pc, offer)
            outlets = [(self.forwarders[t.kind], peers.tap_sender(t, self.forwarders[t.kind]))
                       for t in pc.getTransceivers() if t.kind in self.forwarders and peers.media_codec(t)]
            sdp = await peers.answer(pc)
        except BaseException:
            await peers.close_peer(pc)
            raise
        viewer = Viewer(pc, outlets, SessionIce(ice_ufrag(offer_sdp)), relay_to=relay_to)
        self.viewers[session] = viewer

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState == "connected" and not viewer.connected:
                viewer.connected = True
                for forwarder, outlet in viewer.outlets:
                    if outlet.attach():
                        forwarder.add_outlet(outlet)
            elif pc.connectionState in ("failed", "closed"):
                await self.remove_viewer(session)

        return SessionAnswer(session, sdp, viewer.ice.etag)

    async def remove_viewer(self, session: str) -> bool:
        viewer = self.viewers.pop(session, None)
        if viewer is None:
            return False
        for forwarder, outlet in viewer.outlets:
            forwarder.remove_outlet(outlet)
        if viewer.holds_slot and self.on_slot_freed is not None:
            viewer.holds_slot = False
            try:
                await self.on_slot_freed(self.stream_id)
            except Exception:
                log.exception("stream %s: could not free a viewer slot (the next refresh will)", self.stream_id)
        await peers.close_peer(viewer.pc)
        return True

    def last_packet_age_s(self) -> float:
        if not self.forwarders:
            return time.monotonic() - self.started_s
        return time.monotonic() - max(f.last_packet_s for f in self.forwarders.values())

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for forwarder in self.forwarders.values():
            forwarder.keyframes.cancel()
        for session in list(self.viewers):
            await self.remove_viewer(session)
        for callback in self.on_close:
            try:
                await callback()
            except Exception:
                log.exception("closing room %s", self.stream_id)
        await peers.close_peer(self.upstream)
        await asyncio.sleep(0)
