"""The hot packet path: one publisher track's RTP packets written to every viewer of it, never decoded.

Each packet from upstream is rewritten once (our SSRC, a per-stream sequence and timestamp offset, no header
extensions) into plain RTP bytes per distinct payload type, then for each viewer the only work is that viewer's
SRTP protect and a UDP `sendto` on its nominated ICE pair, both C calls. Viewers that have not seen a keyframe
yet wait in a separate list and join on the next one. NACKs are answered from the track's bounded history, only
for sequence numbers this viewer was actually sent, as RTX when the viewer negotiated it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpCodecParameters, RTCRtpSender
from aiortc.clock import current_ntp_time
from aiortc.rtp import RtpPacket

from livecore.media import rtp

log = logging.getLogger("livecore.media.forwarder")

PacketSink = Callable[[RtpPacket], None]


class Outlet:
    """One viewer's end of one track: its negotiated payload types and, once connected, its send path."""

    __slots__ = ("addr", "first_sequence_number", "payload_type", "protect", "rtx_payload_type",
                 "rtx_sequence_number", "rtx_ssrc", "sender", "sendto")

    def __init__(self, sender: RTCRtpSender, payload_type: int, rtx_payload_type: int | None) -> None:
        self.sender = sender
        self.payload_type = payload_type
        self.rtx_payload_type = rtx_payload_type
        self.rtx_ssrc: int = sender._rtx_ssrc
        self.rtx_sequence_number = random.randrange(0, 32768)
        self.first_sequence_number: int | None = None
        self.sendto: Any = None
        self.protect: Any = None
        self.addr: Any = None

    def attach(self) -> bool:
        """Resolve the SRTP session and the nominated ICE pair once DTLS is up; False while they are not."""
        dtls = self.sender.transport
        srtp = getattr(dtls, "_tx_srtp", None)
        pair = dtls.transport._connection._nominated.get(1) if srtp is not None else None
        if pair is None or pair.protocol.transport is None:
            return False
        self.protect = srtp.protect
        self.sendto = pair.protocol.transport.sendto
        self.addr = pair.remote_addr
        return True

    def has_sent(self, sequence_number: int) -> bool:
        first = self.first_sequence_number
        return first is not None and ((sequence_number - first) & 0xFFFF) < 0x8000

    def send(self, data: bytes) -> None:
        self.sendto(self.protect(data), self.addr)


class KeyframeRequests:
    """Keyframe requests to the publisher, at most one per `interval_s`; a request inside the window is deferred."""

    def __init__(self, interval_s: float, send: Callable[[], None]) -> None:
        self._interval_s = interval_s
        self._send = send
        self._last_s = -interval_s
        self._deferred: asyncio.TimerHandle | None = None
        self.sent = 0

    def request(self) -> None:
        if self._deferred is not None:
            return
        wait_s = self._last_s + self._interval_s - time.monotonic()
        if wait_s <= 0:
            self._fire()
        else:
            self._deferred = asyncio.get_running_loop().call_later(wait_s, self._fire)

    def _fire(self) -> None:
        self._deferred = None
        self._last_s = time.monotonic()
        self.sent += 1
        self._send()

    def cancel(self) -> None:
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None


class Forwarder:
    """Fans one upstream track out to its viewers' outlets and to local sinks (HLS, recording)."""

    def __init__(self, kind: str, codec: RTCRtpCodecParameters, history_packets: int,
                 keyframes: KeyframeRequests) -> None:
        if history_packets & (history_packets - 1):
            raise ValueError("history_packets must be a power of two")
        self.kind = kind
        self.codec = codec
        self.ssrc = random.getrandbits(32)
        self.keyframes = keyframes
        self.sinks: list[PacketSink] = []
        self.packets_in = 0
        self.packets_forwarded = 0
        self.send_errors = 0
        self.last_packet_s = time.monotonic()
        self._starts_keyframe = rtp.keyframe_detector(codec.mimeType)
        self._sequence_offset = random.randrange(0, 65536)
        self._timestamp_offset = random.getrandbits(32)
        self._history: list[tuple[int, int, int, bytes] | None] = [None] * history_packets
        self._history_mask = history_packets - 1
        self._outlets: list[Outlet] = []
        self._waiting: list[Outlet] = []
        self._live: list[Outlet] = []
        self._sends: dict[int, list[tuple[Any, Any, Any, Outlet]]] = {}
        self._last_timestamp: int | None = None

    @property
    def viewers(self) -> int:
        return len(self._outlets)

    def add_outlet(self, outlet: Outlet) -> None:
        """A connected viewer: it receives packets from the next keyframe (audio: the next packet)."""
        self._outlets.append(outlet)
        self._waiting.append(outlet)
        if self._starts_keyframe is not None:
            self.keyframes.request()

    def remove_outlet(self, outlet: Outlet) -> None:
        for members in (self._outlets, self._waiting, self._live):
            if outlet in members:
                members.remove(outlet)
        self._rebuild_sends()

    def forward_packet(self, packet: RtpPacket) -> None:
        """Write one upstream packet to every started viewer and every sink; the per-viewer work is two C calls."""
        payload = packet.payload
        if not payload:
            return  # padding-only probes carry no media
        self.packets_in += 1
        self.last_packet_s = time.monotonic()
        sequence_number = (packet.sequence_number + self._sequence_offset) & 0xFFFF
        timestamp = (packet.timestamp + self._timestamp_offset) & 0xFFFFFFFF
        self._last_timestamp = timestamp
        marker = packet.marker
        self._history[sequence_number & self._history_mask] = (sequence_number, marker, timestamp, payload)
        if self._waiting and (self._starts_keyframe is None or self._starts_keyframe(payload)):
            self._start_waiting(sequence_number)
        if self._sends:
            tail = rtp.header_tail(sequence_number, timestamp, self.ssrc)
            broken = None
            for payload_type, sends in self._sends.items():
                data = bytes((0x80, (marker << 7) | payload_type)) + tail + payload
                for sendto, protect, addr, outlet in sends:
                    try:
                        sendto(protect(data), addr)
                    except Exception:
                        broken = [*(broken or ()), outlet]
                self.packets_forwarded += len(sends)
            if broken:
                self._drop_broken(broken)
        for sink in self.sinks:
            sink(packet)

    def retransmit(self, outlet: Outlet, lost: list[int]) -> int:
        """Answer a viewer's NACK from history, only with packets this viewer was sent; returns how many."""
        resent = 0
        for sequence_number in lost:
            entry = self._history[sequence_number & self._history_mask]
            if entry is None or entry[0] != sequence_number or not outlet.has_sent(sequence_number):
                continue
            _, marker, timestamp, payload = entry
            if outlet.rtx_payload_type is not None:
                data = rtp.build_rtx_packet(marker, outlet.rtx_payload_type, outlet.rtx_sequence_number, timestamp,
                                            outlet.rtx_ssrc, sequence_number, payload)
                outlet.rtx_sequence_number = (outlet.rtx_sequence_number + 1) & 0xFFFF
            else:
                data = rtp.build_packet(marker, outlet.payload_type, rtp.header_tail(sequence_number, timestamp,
                                                                                    self.ssrc), payload)
            try:
                outlet.send(data)
            except Exception:
                continue
            resent += 1
        return resent

    def refresh_sender_reports(self) -> None:
        """Give each viewer's RTCP sender reports a current NTP/RTP timestamp pair (for lip sync)."""
        if self._last_timestamp is None:
            return
        elapsed_s = time.monotonic() - self.last_packet_s
        rtp_now = (self._last_timestamp + int(elapsed_s * self.codec.clockRate)) & 0xFFFFFFFF
        ntp_now = current_ntp_time()
        for outlet in self._live:
            outlet.sender._RTCRtpSender__ntp_timestamp = ntp_now  # type: ignore[attr-defined]
            outlet.sender._RTCRtpSender__rtp_timestamp = rtp_now  # type: ignore[attr-defined]

    def _start_waiting(self, sequence_number: int) -> None:
        for outlet in self._waiting:
            outlet.first_sequence_number = sequence_number
            self._live.append(outlet)
        self._waiting.clear()
        self._rebuild_sends()

    def _drop_broken(self, broken: list[Outlet]) -> None:
        self.send_errors += len(broken)
        for outlet in broken:
            if outlet in self._live and not outlet.attach():
                log.info("viewer %s send path is gone; it stops receiving", id(outlet))
                self._live.remove(outlet)
        self._rebuild_sends()

    def _rebuild_sends(self) -> None:
        sends: dict[int, list[tuple[Any, Any, Any, Outlet]]] = {}
        for outlet in self._live:
            sends.setdefault(outlet.payload_type, []).append((outlet.sendto, outlet.protect, outlet.addr, outlet))
        self._sends = sends
