"""The hot packet path: one publisher track's RTP packets written to every viewer of it, never decoded.

Each packet from upstream is rewritten once (our SSRC, a per-stream sequence and timestamp offset, no header
extensions) into plain RTP bytes per distinct payload type. The packets that arrive in one event-loop iteration
(usually one video frame) are held until the end of that iteration and then written viewer by viewer: copied into
the forwarder's buffer, protected in place by libsrtp, and sent on the viewer's own descriptor of its ICE pair's
socket, equal-sized packets together in one UDP segmentation offload send (see `outlet.py`). A send the socket
cannot take now is dropped and counted, as a router would. Viewers that have not seen a keyframe yet wait in a
separate list and join on the next one. NACKs are answered from the track's bounded history, only for sequence
numbers this viewer was actually sent, as RTX when the viewer negotiated it. RTCP sender reports go to every
started viewer from here, once per `send_sender_reports` call.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

from aiortc import RTCRtpCodecParameters
from aiortc.clock import current_ntp_time
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtp import RtpPacket

from livecore.media import rtp
from livecore.media.fanout import BATCH_BYTES_MAX, BATCH_PACKETS_MAX, FanOut, Send
from livecore.media.outlet import PACKET_BYTES_MAX, Outlet

log = logging.getLogger("livecore.media.forwarder")

FrameSink = Callable[[JitterFrame], None]
RTP_HEADER_BYTES = 12  # what the forwarder writes before a payload: no CSRCs, no extensions


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
    """Fans one upstream track out to its viewers' outlets; its reassembled frames go to `frame_sinks` (HLS)."""

    def __init__(self, kind: str, codec: RTCRtpCodecParameters, history_packets: int,
                 keyframes: KeyframeRequests) -> None:
        if history_packets & (history_packets - 1):
            raise ValueError("history_packets must be a power of two")
        self.kind = kind
        self.codec = codec
        self.ssrc = random.getrandbits(32)
        self.keyframes = keyframes
        self.frame_sinks: list[FrameSink] = []  # fed by the upstream tap (peers.tap_receiver), not per packet here
        self.packets_in = 0
        self.packets_forwarded = 0
        self.packets_dropped = 0  # sends a full socket buffer refused
        self.send_errors = 0
        self.packets_sent = 0  # packets and payload octets fanned out since the track started: SR counts
        self.octets_sent = 0
        self.last_packet_s = time.monotonic()
        self._starts_keyframe = rtp.keyframe_detector(codec.mimeType)
        self._sequence_offset = random.randrange(0, 65536)
        self._timestamp_offset = random.getrandbits(32)
        self._history: list[tuple[int, int, int, bytes] | None] = [None] * history_packets
        self._history_mask = history_packets - 1
        self._outlets: list[Outlet] = []
        self._waiting: list[Outlet] = []
        self._live: list[Outlet] = []
        self._sends: dict[int, list[Send]] = {}
        self._last_timestamp: int | None = None
        self._batch: list[tuple[int, bytes, bytes]] = []  # (marker, header tail, payload) not yet fanned out
        self._batch_bytes = 0
        self._fan_out = FanOut()

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
        self.flush()
        for members in (self._outlets, self._waiting, self._live):
            if outlet in members:
                members.remove(outlet)
        self._rebuild_sends()
        outlet.release()

    def forward_packet(self, packet: RtpPacket) -> None:
        """Queue one upstream packet for every started viewer; they are sent at the end of this loop iteration."""
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
            self.flush()  # what is held was sent before the keyframe: not for the viewers starting now
            self._start_waiting(sequence_number)
        if self._sends and len(payload) + RTP_HEADER_BYTES > PACKET_BYTES_MAX:
            self.send_errors += sum(len(sends) for sends in self._sends.values())  # too long to protect: not sent
        elif self._sends:
            self._batch.append((marker, rtp.header_tail(sequence_number, timestamp, self.ssrc), payload))
            self._batch_bytes += len(payload)
            if len(self._batch) >= BATCH_PACKETS_MAX or self._batch_bytes >= BATCH_BYTES_MAX:
                self.flush()
            elif len(self._batch) == 1:
                try:
                    asyncio.get_running_loop().call_soon(self.flush)
                except RuntimeError:  # no event loop to wait for: send it now
                    self.flush()
        self.packets_sent += 1
        self.octets_sent += len(payload)

    def flush(self) -> None:
        """Send the held packets to every started viewer now."""
        batch = self._batch
        if not batch:
            return
        self._batch = []
        self._batch_bytes = 0
        broken: list[Outlet] = []
        for payload_type, sends in self._sends.items():
            packets = [bytes((0x80, (marker << 7) | payload_type)) + tail + payload for marker, tail, payload in batch]
            sent, dropped = self._fan_out.send(packets, sends, broken)
            self.packets_forwarded += sent
            self.packets_dropped += dropped
        if broken:
            self._drop_broken(broken)

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
                outlet.send(data, self._fan_out.buffer)
            except Exception:
                continue
            resent += 1
        return resent

    def send_sender_reports(self) -> int:
        """Send every started viewer an RTCP sender report (NTP/RTP time for lip sync, its own counts); how many."""
        if self._last_timestamp is None:
            return 0
        elapsed_s = time.monotonic() - self.last_packet_s
        rtp_now = (self._last_timestamp + int(elapsed_s * self.codec.clockRate)) & 0xFFFFFFFF
        ntp_now = current_ntp_time()
        sent = 0
        for outlet in self._live:
            report = outlet.sender_report(self.ssrc, ntp_now, rtp_now, self.packets_sent - outlet.packets_at_start,
                                          self.octets_sent - outlet.octets_at_start)
            try:
                outlet.send_rtcp(report, self._fan_out.buffer)
            except OSError:
                continue
            sent += 1
        return sent

    def _start_waiting(self, sequence_number: int) -> None:
        for outlet in self._waiting:
            outlet.first_sequence_number = sequence_number
            outlet.packets_at_start = self.packets_sent
            outlet.octets_at_start = self.octets_sent
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
        sends: dict[int, list[Send]] = {}
        for outlet in self._live:
            sends.setdefault(outlet.payload_type, []).append((outlet.srtp, outlet.sendto, outlet.sendmsg, outlet.addr,
                                                              outlet))
        self._sends = sends
