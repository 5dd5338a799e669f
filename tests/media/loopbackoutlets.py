"""Outlets wired to real SRTP sessions and UDP sockets on loopback, with a receiving end that decrypts.

The sending half is what a viewer's outlet is in production (libsrtp protect, its own socket descriptor); the
receiving half is a plain socket and the matching pylibsrtp session, so tests see exactly the datagrams a viewer
would, decrypted.
"""

from __future__ import annotations

import os
import socket
from types import SimpleNamespace
from typing import Any

from aiortc.rtp import RtcpPacket, RtpPacket
from pylibsrtp import Error, Policy, Session

from livecore.media.outlet import Outlet

GCM = Policy.SRTP_PROFILE_AEAD_AES_128_GCM
CM_SHA1_80 = Policy.SRTP_PROFILE_AES128_CM_SHA1_80
KEY_BYTES = {GCM: 16 + 12, CM_SHA1_80: 16 + 14}


class _Outlet(Outlet):
    def attach(self) -> bool:
        return self.sock is not None  # already bound to the test's socket; gone once released


class LoopbackViewer:
    """One viewer's outlet and the socket and SRTP session that receive what it sends."""

    def __init__(self, payload_type: int, rtx_payload_type: int | None = None, profile: int = GCM,
                 sock: Any = None, cname: str = "viewer-cname") -> None:
        key = os.urandom(KEY_BYTES[profile])
        tx = Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile)
        tx.allow_repeat_tx = True  # as aiortc sets it: a retransmission reuses a sequence number
        self.rx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=profile))
        self.receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.receiver.bind(("127.0.0.1", 0))
        self.receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.receiver.setblocking(False)
        self.sender = SimpleNamespace(_rtx_ssrc=0xABCD, _RTCRtpSender__cname=cname)
        self.outlet = _Outlet(self.sender, payload_type, rtx_payload_type)  # type: ignore[arg-type]
        self.outlet.bind(Session(tx), sock or _udp_socket(), self.receiver.getsockname())
        self.rtp: list[bytes] = []
        self.rtcp: list[list[Any]] = []
        self.datagram_sizes: list[int] = []
        self.replayed = 0  # datagrams SRTP refused as replays: retransmissions of packets already received

    def stub_socket(self) -> StubSocket:
        """Send through a socket whose sends a test can make fail."""
        stub = StubSocket(_udp_socket())
        self.outlet.bind(self.outlet.session, stub, self.receiver.getsockname())  # type: ignore[arg-type]
        return stub

    def receive(self) -> list[bytes]:
        """Drain the socket: decrypted RTP packets are added to `rtp` (and returned), RTCP to `rtcp`."""
        fresh = []
        while True:
            try:
                data = self.receiver.recv(65536)
            except BlockingIOError:
                return fresh
            self.datagram_sizes.append(len(data))
            if 192 <= data[1] <= 223:
                self.rtcp.append(RtcpPacket.parse(self.rx.unprotect_rtcp(data)))
                continue
            try:
                fresh.append(self.rx.unprotect(data))
            except Error:
                self.replayed += 1
                continue
            self.rtp.append(fresh[-1])

    def parsed(self) -> list[RtpPacket]:
        return [RtpPacket.parse(data) for data in self.rtp]

    def close(self) -> None:
        self.outlet.release()
        self.receiver.close()


def _udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


class StubSocket:
    """A UDP socket stand-in whose sends fail the way a test asks: `sendto`/`sendmsg` raise what is queued."""

    type = socket.SOCK_DGRAM

    def __init__(self, real: socket.socket) -> None:
        self.real = real
        self.sendto_errors: list[OSError] = []
        self.sendmsg_errors: list[OSError] = []
        self.calls: list[str] = []

    def sendto(self, data: Any, addr: Any) -> int:
        self.calls.append("sendto")
        if self.sendto_errors:
            raise self.sendto_errors.pop(0)
        return self.real.sendto(data, addr)

    def sendmsg(self, buffers: Any, ancillary: Any, flags: int, addr: Any) -> int:
        self.calls.append("sendmsg")
        if self.sendmsg_errors:
            raise self.sendmsg_errors.pop(0)
        return self.real.sendmsg(buffers, ancillary, flags, addr)

    def close(self) -> None:
        self.real.close()
