"""The forwarder against captured-shape RTP payloads: keyframe starts, per-viewer history, throttled requests."""

from __future__ import annotations

import asyncio
import struct
from types import SimpleNamespace

from aiortc import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket

from livecore.media import rtp
from livecore.media.forwarder import Forwarder, KeyframeRequests, Outlet

H264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102)
STAP_A_SPS = bytes([24, 0, 4, 0x67, 0x42, 0xC0, 0x1F, 0, 2, 0x68, 0xCE])
FU_A_IDR_START = bytes([28, 0x80 | 5, 0xAA])
FU_A_IDR_MIDDLE = bytes([28, 5, 0xBB])
NON_IDR = bytes([1, 0xCC])


def test_keyframe_detection():
    assert rtp.h264_starts_keyframe(STAP_A_SPS)
    assert rtp.h264_starts_keyframe(FU_A_IDR_START)
    assert not rtp.h264_starts_keyframe(FU_A_IDR_MIDDLE)
    assert not rtp.h264_starts_keyframe(NON_IDR)
    # VP8: X=1, I=1 with a 15-bit picture id, S=1 PID=0, then a key frame header (P bit clear)
    assert rtp.vp8_starts_keyframe(bytes([0x90, 0x80, 0x81, 0x23, 0x10]))
    assert not rtp.vp8_starts_keyframe(bytes([0x90, 0x80, 0x81, 0x23, 0x11]))
    assert not rtp.vp8_starts_keyframe(bytes([0x80, 0x80, 0x81, 0x23, 0x10]))  # not a partition start


class FakeOutlet(Outlet):
    def __init__(self, payload_type: int, rtx_payload_type: int | None) -> None:
        super().__init__(SimpleNamespace(_rtx_ssrc=0xABCD), payload_type, rtx_payload_type)  # type: ignore[arg-type]
        self.sent: list[bytes] = []
        self.protect = lambda data: data
        self.sendto = lambda data, addr: self.sent.append(data)
        self.addr = ("127.0.0.1", 9)

    def attach(self) -> bool:
        return True


def _packet(seq: int, payload: bytes, marker: int = 0) -> RtpPacket:
    return RtpPacket(payload_type=96, sequence_number=seq, timestamp=seq * 10, ssrc=1, payload=payload, marker=marker)


async def test_viewers_start_on_keyframes_and_nacks_use_their_own_history():
    requests: list[int] = []
    forwarder = Forwarder("video", H264, 64, KeyframeRequests(1.0, lambda: requests.append(1)))
    early, late = FakeOutlet(102, 103), FakeOutlet(98, None)
    forwarder.add_outlet(early)
    assert requests == [1]
    forwarder.forward_packet(_packet(1, NON_IDR, 1))
    assert early.sent == []  # waits for a keyframe
    forwarder.forward_packet(_packet(2, STAP_A_SPS))
    forwarder.forward_packet(_packet(3, FU_A_IDR_START, 1))
    forwarder.add_outlet(late)  # within the throttle window: deferred, not sent now
    assert requests == [1]
    forwarder.forward_packet(_packet(4, NON_IDR, 1))
    forwarder.forward_packet(_packet(5, STAP_A_SPS, 1))
    assert len(early.sent) == 4 and len(late.sent) == 1
    assert early.sent[0][1] & 0x7F == 102 and late.sent[0][1] & 0x7F == 98
    assert early.sent[0][8:12] == late.sent[0][8:12] == struct.pack("!I", forwarder.ssrc)
    seq = lambda data: struct.unpack("!H", data[2:4])[0]  # noqa: E731
    first_early = seq(early.sent[0])
    # the late viewer was never sent the first keyframe: its NACK for it is not answered
    assert forwarder.retransmit(late, [first_early]) == 0
    assert forwarder.retransmit(early, [first_early]) == 1
    rtx = early.sent[-1]
    assert rtx[1] & 0x7F == 103 and struct.unpack("!H", rtx[12:14])[0] == first_early
    assert rtx[14:] == STAP_A_SPS
    await asyncio.sleep(1.1)
    assert requests == [1, 1]  # the deferred request went out once the window passed
    assert forwarder.packets_forwarded == 5
