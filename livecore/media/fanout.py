"""One batch of plain RTP packets written to many viewers: protected in one reused buffer, sent in GSO runs.

Per viewer the work is a copy of each packet into the buffer, libsrtp's `srtp_protect` in place, and one send per
run of packets. A run is what one UDP segmentation offload `sendmsg` can carry: packets of equal size, the last
one possibly shorter (H.264 and VP8 packetizers split a frame into near-equal fragments, so a frame is usually
one to three runs). Where the packets sit in the buffer depends only on the SRTP tag length, so the layout (the
offsets, the cffi pointers, the memoryviews and control messages for each run) is worked out once per batch and
tag length, not once per viewer. A viewer whose tag length is not known yet, or whose socket refuses GSO, gets
its packets one `sendto` at a time.
"""

from __future__ import annotations

import logging
import socket
import sys
from typing import Any

from livecore.media.outlet import PACKET_BYTES_MAX, SRTP_TRAILER_BYTES_MAX, Outlet, PacketBuffer, srtp_protect

log = logging.getLogger("livecore.media.fanout")

UDP_SEGMENT = 103  # linux/udp.h: the segment size of a UDP GSO send, as a SOL_UDP control message
GSO_SEGMENTS_MAX = 64  # linux/udp.h UDP_MAX_SEGMENTS
BATCH_PACKETS_MAX = 32  # packets in one batch; a forwarder sends what it holds once it has this many
BATCH_BYTES_MAX = 48 * 1024  # plain bytes in one batch: a GSO send must stay under 64 KiB with its trailers
BUFFER_BYTES = BATCH_BYTES_MAX + PACKET_BYTES_MAX + BATCH_PACKETS_MAX * SRTP_TRAILER_BYTES_MAX

Send = tuple[Any, Any, Any, Any, Outlet]  # (srtp context, sendto, sendmsg, address, outlet)


class _Layout:
    """Where each packet of a batch goes in the buffer for one tag length, and the sends that carry them."""

    __slots__ = ("copies", "runs")

    def __init__(self, copies: list[tuple[int, int, bytes, Any]], runs: list[tuple[int, Any, Any, int]]) -> None:
        self.copies = copies  # (offset, plain size, packet, cffi pointer at offset)
        self.runs = runs  # (packets, memoryview of the protected run, GSO control messages or None, segment size)


class FanOut:
    """Sends batches of plain RTP packets to outlets; one per forwarder, used only on the event loop's thread."""

    def __init__(self) -> None:
        self.buffer = PacketBuffer(BUFFER_BYTES)  # also its forwarder's, for packets sent one at a time

    def send(self, packets: list[bytes], sends: list[Send], broken: list[Outlet]) -> tuple[int, int]:
        """Protect and send `packets` to every outlet in `sends`; returns (packets sent, packets dropped).

        Outlets whose send path failed are appended to `broken`. A send the socket cannot take now is dropped.
        """
        run_ends = gso_run_ends([len(data) for data in packets])
        layouts: dict[int, _Layout] = {}
        scratch = self.buffer
        buffer, length = scratch.buffer, scratch.length
        protect = srtp_protect
        sent = dropped = 0
        for srtp, sendto, sendmsg, addr, outlet in sends:
            tag = outlet.tag_bytes
            if tag is None or not outlet.gso:
                result = self._send_each(packets, srtp, outlet)
                if result is None:
                    broken.append(outlet)
                else:
                    sent += result[0]
                    dropped += result[1]
                continue
            layout = layouts.get(tag)
            if layout is None:
                layout = layouts[tag] = self._layout(packets, run_ends, tag)
            failed = False
            for offset, size, data, pointer in layout.copies:
                buffer[offset:offset + size] = data
                length[0] = size
                if protect(srtp, pointer, length) or length[0] != size + tag:
                    failed = True
                    break
            if failed:
                outlet.tag_bytes = None  # learnt again, packet by packet, on the next batch
                broken.append(outlet)
                continue
            for count, run, ancillary, segment in layout.runs:
                try:
                    if ancillary is None:
                        sendto(run, addr)
                    else:
                        sendmsg((run,), ancillary, 0, addr)
                    sent += count
                except BlockingIOError:
                    dropped += count
                except OSError:
                    if ancillary is None or not _send_without_gso(outlet, run, segment):
                        broken.append(outlet)
                        break
                    sent += count
        return sent, dropped

    def _send_each(self, packets: list[bytes], srtp: Any, outlet: Outlet) -> tuple[int, int] | None:
        """One `sendto` per packet, learning the outlet's SRTP tag length; None when its send path failed."""
        scratch = self.buffer
        buffer, cbuffer, view, length = scratch.buffer, scratch.cbuffer, scratch.view, scratch.length
        sendto, addr = outlet.sendto, outlet.addr
        sent = dropped = 0
        for data in packets:
            size = len(data)
            buffer[:size] = data
            length[0] = size
            if srtp_protect(srtp, cbuffer, length):
                return None
            outlet.tag_bytes = length[0] - size
            try:
                sendto(view[:length[0]], addr)
                sent += 1
            except BlockingIOError:
                dropped += 1
            except OSError:
                return None
        return sent, dropped

    def _layout(self, packets: list[bytes], run_ends: list[bool], tag: int) -> _Layout:
        scratch = self.buffer
        copies: list[tuple[int, int, bytes, Any]] = []
        runs: list[tuple[int, Any, Any, int]] = []
        offset = start = first = 0
        for index, (data, ends) in enumerate(zip(packets, run_ends, strict=True)):
            copies.append((offset, len(data), data, scratch.cbuffer + offset))
            offset += len(data) + tag
            if ends:
                count = index + 1 - first
                segment = len(packets[first]) + tag
                ancillary = None if count == 1 else (
                    (socket.SOL_UDP, UDP_SEGMENT, segment.to_bytes(2, sys.byteorder)),)
                runs.append((count, scratch.view[start:offset], ancillary, segment))
                start, first = offset, index + 1
        return _Layout(copies, runs)


def gso_run_ends(sizes: list[int]) -> list[bool]:
    """Where runs of packets that one UDP GSO send can carry end: equal sizes, the last one may be shorter."""
    ends = [False] * len(sizes)
    start = 0
    while start < len(sizes):
        end = start + 1
        while end < len(sizes) and sizes[end] == sizes[start] and end - start < GSO_SEGMENTS_MAX:
            end += 1
        if end < len(sizes) and sizes[end] < sizes[start] and end - start < GSO_SEGMENTS_MAX:
            end += 1
        ends[end - 1] = True
        start = end
    return ends


def _send_without_gso(outlet: Outlet, run: memoryview, segment: int) -> bool:
    """This socket refused a segmentation offload send: send the run packet by packet, and so from now on."""
    outlet.gso = False
    log.info("viewer %s: UDP segmentation offload refused; sending packet by packet", id(outlet))
    try:
        for offset in range(0, len(run), segment):
            outlet.sendto(run[offset:offset + segment], outlet.addr)
    except OSError:
        return False
    return True
