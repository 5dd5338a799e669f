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
from livecore.media.gopcache import CachedPacket, GopCache
from livecore.media.outlet import PACKET_BYTES_MAX, Outlet

log = logging.getLogger("livecore.media.forwarder")

FrameSink = Callable[[JitterFrame], None]
RTP_HEADER_BYTES = 12  # what the forwarder writes before a payload: no CSRCs, no extensions
CATCH_UP_BATCHES_PER_STEP = 2  # batches of the cached group sent to each joiner per event-loop iteration


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
                 keyframes: KeyframeRequests, gop_cache: GopCache | None = None) -> None:
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
        self.gop_cache = gop_cache if gop_cache is not None and self._starts_keyframe is not None else GopCache(0, 0)
        self.keyframes_in = 0  # keyframes the publisher sent (their first packets)
        self.cached_starts = 0  # viewers started from the cached group instead of waiting for a keyframe
        self._sequence_offset = random.randrange(0, 65536)
        self._timestamp_offset = random.getrandbits(32)
        self._history: list[tuple[int, int, int, bytes] | None] = [None] * history_packets
        self._history_mask = history_packets - 1
        self._outlets: list[Outlet] = []
        self._waiting: list[Outlet] = []
        self._joining: dict[Outlet, int] = {}  # viewers being sent the cached group: the index of their next packet
        self._catch_up_scheduled = False
        self._live: list[Outlet] = []
        self._sends: dict[int, list[Send]] = {}
        self._last_timestamp: int | None = None
        self._keyframe_timestamp: int | None = None
        self._batch: list[tuple[int, bytes, bytes]] = []  # (marker, header tail, payload) not yet fanned out
        self._batch_bytes = 0
        self._fan_out = FanOut()

    @property
    def viewers(self) -> int:
        return len(self._outlets)

    @property
    def last_timestamp(self) -> int | None:
        """The RTP timestamp (as forwarded) of the newest packet: how far the stream has gone."""
        return self._last_timestamp

    def add_outlet(self, outlet: Outlet) -> None:
        """A connected viewer: it is sent the cached group of pictures and then the live packets; without a cached
        group it receives packets from the next keyframe (audio: the next packet)."""
        self._outlets.append(outlet)
        cache = self.gop_cache
        if cache.ready:
            self.flush()  # the held packets are in the cache already: the joiner gets them from there
            first_sequence_number = cache.packets[0][0]
            outlet.first_sequence_number = first_sequence_number
            outlet.start_timestamp = cache.keyframe_timestamp
            outlet.packets_at_start = self.packets_sent - len(cache.packets)
            outlet.octets_at_start = self.octets_sent - cache.payload_bytes
            self._joining[outlet] = 0
            self.cached_starts += 1
            self._schedule_catch_up()
            return
        self._waiting.append(outlet)
        if self._starts_keyframe is not None:
            self.keyframes.request()

    def remove_outlet(self, outlet: Outlet) -> None:
        self.flush()
        for members in (self._outlets, self._waiting, self._live):
            if outlet in members:
                members.remove(outlet)
        self._joining.pop(outlet, None)
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
        entry = (sequence_number, marker, timestamp, payload)
        self._history[sequence_number & self._history_mask] = entry
        starts_keyframe = self._starts_keyframe is not None and self._starts_keyframe(payload)
        cache = self.gop_cache
        if starts_keyframe and timestamp != self._keyframe_timestamp:
            self._keyframe_timestamp = timestamp
            self.keyframes_in += 1
        if starts_keyframe and cache.starts_new_group(timestamp, True):
            if self._joining:
                self.flush()
                self._finish_joining()  # the rest of the old group, now: the new one replaces it
        elif self._joining and cache.would_overflow(payload):
            self.flush()
            self._finish_joining()
        cache.add(entry, starts_keyframe)
        if self._waiting and (self._starts_keyframe is None or starts_keyframe):
            self.flush()  # what is held was sent before the keyframe: not for the viewers starting now
            self._start_waiting(sequence_number, timestamp)
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

    def _schedule_catch_up(self) -> None:
        if self._catch_up_scheduled:
            return
        self._catch_up_scheduled = True
        try:
            asyncio.get_running_loop().call_soon(self._catch_up)
        except RuntimeError:  # no event loop to spread the sends over: send it all now
            self._catch_up_scheduled = False
            self._finish_joining()

    def _catch_up(self) -> None:
        """Send each joiner its next few batches of the cached group; one that has it all goes live."""
        self._catch_up_scheduled = False
        self.flush()  # the cache now holds nothing a live viewer has not been sent
        self._send_cached(BATCH_PACKETS_MAX * CATCH_UP_BATCHES_PER_STEP)
        if self._joining:
            self._schedule_catch_up()

    def _finish_joining(self) -> None:
        """Send the joiners the rest of the cached group at once (the group is about to be replaced or dropped)."""
        self._send_cached(len(self.gop_cache.packets))

    def _send_cached(self, packets_max: int) -> None:
        packets = self.gop_cache.packets
        started: list[Outlet] = []
        broken: list[Outlet] = []
        for outlet, index in list(self._joining.items()):
            end = min(index + packets_max, len(packets))
            if not self._send_run(outlet, packets[index:end], broken):
                continue
            if end == len(packets):
                started.append(outlet)
            else:
                self._joining[outlet] = end
        for outlet in broken:
            del self._joining[outlet]
            if outlet.attach():  # its path changed: it starts again on the live stream's next keyframe
                self._waiting.append(outlet)
                self.keyframes.request()
            else:
                log.info("viewer %s send path is gone; it stops receiving", id(outlet))
        for outlet in started:
            del self._joining[outlet]
            self._live.append(outlet)
        if started:
            self._rebuild_sends()

    def _send_run(self, outlet: Outlet, run: list[CachedPacket], broken: list[Outlet]) -> bool:
        """Send cached packets to one viewer in batches; False when its send path failed."""
        send: Send = (outlet.srtp, outlet.sendto, outlet.sendmsg, outlet.addr, outlet)
        payload_type = outlet.payload_type
        batch: list[bytes] = []
        batch_bytes = 0
        for index, (sequence_number, marker, timestamp, payload) in enumerate(run):
            if len(payload) + RTP_HEADER_BYTES > PACKET_BYTES_MAX:
                self.send_errors += 1
            else:
                batch.append(rtp.build_packet(marker, payload_type, rtp.header_tail(sequence_number, timestamp,
                                                                                   self.ssrc), payload))
                batch_bytes += len(payload)
            if batch and (len(batch) >= BATCH_PACKETS_MAX or batch_bytes >= BATCH_BYTES_MAX or index == len(run) - 1):
                failed: list[Outlet] = []
                sent, dropped = self._fan_out.send(batch, [send], failed)
                self.packets_forwarded += sent
                self.packets_dropped += dropped
                if failed:
                    self.send_errors += 1
                    broken.append(outlet)
                    return False
                batch, batch_bytes = [], 0
        return True

    def _start_waiting(self, sequence_number: int, timestamp: int) -> None:
        for outlet in self._waiting:
            outlet.first_sequence_number = sequence_number
            outlet.start_timestamp = timestamp
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
