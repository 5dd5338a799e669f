"""One viewer's end of one forwarded track: its SRTP context and its own descriptor of the ICE pair's UDP socket.

aiortc sends each RTP packet through three coroutines (sender, DTLS transport, ICE connection), pylibsrtp's
`Session.protect` (which allocates a length cell and copies the packet in and out of its buffer) and the event
loop's datagram transport. For a forwarded packet none of that is needed: the packet is copied into a buffer that
is reused for every viewer, protected in place by libsrtp's `srtp_protect` through pylibsrtp's own binding (the
library aiortc itself uses), and written with `sendto` on the outlet's descriptor of the nominated pair's socket;
`fanout.py` does this for a batch of packets and many viewers at once. RTCP sender reports are built with aiortc's
packet classes and sent the same way.
"""

from __future__ import annotations

import os
import random
import socket
import sys
from typing import Any

from aiortc import RTCRtpSender
from aiortc.rtp import RtcpSdesPacket, RtcpSenderInfo, RtcpSourceInfo, RtcpSrPacket
from pylibsrtp import Session
from pylibsrtp._binding import ffi, lib  # pylibsrtp's cffi binding of libsrtp

SRTP_TRAILER_BYTES_MAX = 4 + 16 + 128  # SRTCP index + longest tag + longest MKI, as pylibsrtp reserves
PACKET_BYTES_MAX = 2048 - SRTP_TRAILER_BYTES_MAX  # longest plain RTP/RTCP packet an outlet sends
GSO_SUPPORTED = sys.platform == "linux"  # UDP segmentation offload (Linux 4.18+; a refusal is handled per outlet)

srtp_protect = lib.srtp_protect
srtp_protect_rtcp = lib.srtp_protect_rtcp
_PROTECT_SIGNATURE = "srtp_err_status_t(*)(struct srtp_ctx_t_ *, void *, int *)"  # libsrtp 2: in place
if {ffi.typeof(srtp_protect).cname, ffi.typeof(srtp_protect_rtcp).cname} != {_PROTECT_SIGNATURE}:
    raise ImportError(f"livecore.media needs pylibsrtp built on libsrtp 2 (srtp_protect as {_PROTECT_SIGNATURE})")


class PacketBuffer:
    """A preallocated buffer that libsrtp protects packets in, in place; one per forwarder, reused per viewer.

    It is only used synchronously on its forwarder's event loop thread: the kernel has copied a datagram when
    `sendto` returns, so the next viewer's packets can overwrite it.
    """

    __slots__ = ("buffer", "cbuffer", "length", "view")

    def __init__(self, size_bytes: int) -> None:
        self.buffer = bytearray(size_bytes)
        self.cbuffer = ffi.from_buffer(self.buffer)  # exported, so the bytearray can never be resized or moved
        self.view = memoryview(self.buffer)
        self.length = ffi.new("int *")


class Outlet:
    """A viewer's send path for one track: its payload types and, once connected, its SRTP context and socket."""

    __slots__ = ("addr", "first_sequence_number", "gso", "octets_at_start", "packets_at_start", "payload_type",
                 "rtx_payload_type", "rtx_sequence_number", "rtx_ssrc", "sdes", "sender", "sendmsg", "sendto",
                 "session", "sock", "srtp", "start_timestamp", "tag_bytes")

    def __init__(self, sender: RTCRtpSender, payload_type: int, rtx_payload_type: int | None) -> None:
        self.sender = sender
        self.payload_type = payload_type
        self.rtx_payload_type = rtx_payload_type
        self.rtx_ssrc: int = sender._rtx_ssrc
        self.rtx_sequence_number = random.randrange(0, 32768)
        self.first_sequence_number: int | None = None
        self.start_timestamp: int | None = None  # the RTP timestamp of the keyframe this viewer started on
        self.packets_at_start = 0  # the track's fan-out counters when this viewer started: its SR counts
        self.octets_at_start = 0
        self.sdes = b""  # this viewer's RTCP SDES packet (our CNAME for it), serialized once
        self.session: Session | None = None  # kept referenced: libsrtp frees the context with it
        self.srtp: Any = None
        self.sock: socket.socket | None = None
        self.sendto: Any = None
        self.sendmsg: Any = None
        self.addr: Any = None
        self.gso = False
        self.tag_bytes: int | None = None  # what libsrtp adds to each RTP packet, learnt from the first one sent

    def attach(self) -> bool:
        """Resolve the SRTP session and the nominated ICE pair's socket once DTLS is up; False while they are not."""
        dtls = self.sender.transport
        session = getattr(dtls, "_tx_srtp", None)
        pair = dtls.transport._connection._nominated.get(1) if session is not None else None
        transport = pair.protocol.transport if pair is not None else None
        if transport is None:
            return False
        raw = transport.get_extra_info("socket")
        if raw is None:  # the pair's local end is this node's TURN allocation: aioice wraps what goes through it
            self.bind_relayed(session, transport, pair.remote_addr)
            return True
        sock = socket.socket(fileno=os.dup(raw.fileno()))
        sock.setblocking(False)
        self.bind(session, sock, pair.remote_addr)
        return True

    def bind(self, session: Session, sock: socket.socket, addr: Any) -> None:
        """Send with `session` on `sock` (this outlet's own non-blocking descriptor of a UDP socket) to `addr`."""
        self.release()
        self.session = session
        self.srtp = session._srtp[0]
        self.sock = sock
        self.sendto = sock.sendto
        self.sendmsg = sock.sendmsg
        self.addr = addr
        self.gso = GSO_SUPPORTED and sock.type == socket.SOCK_DGRAM
        self.tag_bytes = None

    def bind_relayed(self, session: Session, transport: Any, addr: Any) -> None:
        """Send with `session` through `transport` (aioice's TURN transport, which frames each packet as channel
        data): one packet at a time and copied, since the protect buffer is reused; direct viewers keep `bind`."""
        self.release()
        self.session = session
        self.srtp = session._srtp[0]
        self.sendto = lambda data, to: transport.sendto(bytes(data), to)
        self.sendmsg = None
        self.addr = addr
        self.gso = False
        self.tag_bytes = None

    def release(self) -> None:
        """Close this outlet's descriptor of the socket (the ICE connection keeps its own)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def has_sent(self, sequence_number: int) -> bool:
        first = self.first_sequence_number
        return first is not None and ((sequence_number - first) & 0xFFFF) < 0x8000

    def send(self, data: bytes, scratch: PacketBuffer) -> None:
        """Protect (in `scratch`) and send one RTP packet: retransmissions; the fan-out does this in batches."""
        self._send(data, scratch, srtp_protect)

    def send_rtcp(self, data: bytes, scratch: PacketBuffer) -> None:
        self._send(data, scratch, srtp_protect_rtcp)

    def _send(self, data: bytes, scratch: PacketBuffer, protect: Any) -> None:
        size = len(data)
        if size > PACKET_BYTES_MAX:
            raise ValueError(f"a {size}-byte packet is over the {PACKET_BYTES_MAX} bytes an outlet sends")
        scratch.buffer[:size] = data
        scratch.length[0] = size
        status = protect(self.srtp, scratch.cbuffer, scratch.length)
        if status:
            raise OSError(f"libsrtp protect failed with status {status}")
        self.sendto(scratch.view[:scratch.length[0]], self.addr)

    def sender_report(self, ssrc: int, ntp_timestamp: int, rtp_timestamp: int, packets: int, octets: int) -> bytes:
        """This viewer's RTCP SR + SDES (CNAME) compound packet, serialized by aiortc."""
        if not self.sdes:
            cname = getattr(self.sender, "_RTCRtpSender__cname", None)
            if cname:
                self.sdes = bytes(RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=ssrc, items=[(1, cname.encode())])]))
        return bytes(RtcpSrPacket(ssrc=ssrc, sender_info=RtcpSenderInfo(
            ntp_timestamp=ntp_timestamp, rtp_timestamp=rtp_timestamp, packet_count=packets & 0xFFFFFFFF,
            octet_count=octets & 0xFFFFFFFF))) + self.sdes
