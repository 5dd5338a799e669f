"""The forwarder against captured-shape RTP payloads, through real SRTP sessions and sockets on loopback:
keyframe starts, per-viewer history, throttled requests, sender reports, full sockets."""

from __future__ import annotations

import asyncio
import struct

from aiortc import RTCRtpCodecParameters
from aiortc.rtp import RtcpSdesPacket, RtcpSrPacket, RtpPacket
from loopbackoutlets import CM_SHA1_80, LoopbackViewer

from livecore.media import rtp
from livecore.media.forwarder import Forwarder, KeyframeRequests
from livecore.media.outlet import PACKET_BYTES_MAX

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


def _packet(seq: int, payload: bytes, marker: int = 0) -> RtpPacket:
    return RtpPacket(payload_type=96, sequence_number=seq, timestamp=seq * 10, ssrc=1, payload=payload, marker=marker)


def _forwarder(requests: list[int] | None = None) -> Forwarder:
    sink = requests if requests is not None else []
    return Forwarder("video", H264, 64, KeyframeRequests(1.0, lambda: sink.append(1)))


async def test_viewers_start_on_keyframes_and_nacks_use_their_own_history():
    requests: list[int] = []
    forwarder = _forwarder(requests)
    early, late = LoopbackViewer(102, 103), LoopbackViewer(98, None, profile=CM_SHA1_80)
    try:
        forwarder.add_outlet(early.outlet)
        assert requests == [1]
        forwarder.forward_packet(_packet(1, NON_IDR, 1))
        await asyncio.sleep(0)
        assert early.receive() == []  # waits for a keyframe
        forwarder.forward_packet(_packet(2, STAP_A_SPS))
        forwarder.forward_packet(_packet(3, FU_A_IDR_START, 1))
        forwarder.add_outlet(late.outlet)  # within the throttle window: deferred, not sent now
        assert requests == [1]
        forwarder.forward_packet(_packet(4, NON_IDR, 1))
        forwarder.forward_packet(_packet(5, STAP_A_SPS, 1))
        await asyncio.sleep(0)  # the held packets leave at the end of the loop iteration
        assert len(early.receive()) == 4 and len(late.receive()) == 1
        assert [p.payload for p in early.parsed()] == [STAP_A_SPS, FU_A_IDR_START, NON_IDR, STAP_A_SPS]
        assert late.parsed()[0].payload == STAP_A_SPS
        assert early.parsed()[0].payload_type == 102 and late.parsed()[0].payload_type == 98
        assert early.parsed()[0].ssrc == late.parsed()[0].ssrc == forwarder.ssrc
        numbers = [p.sequence_number for p in early.parsed()]
        assert numbers == [(numbers[0] + i) & 0xFFFF for i in range(4)]
        first_early = numbers[0]
        # the late viewer was never sent the first keyframe: its NACK for it is not answered
        assert forwarder.retransmit(late.outlet, [first_early]) == 0
        assert forwarder.retransmit(early.outlet, [first_early]) == 1
        rtx = early.receive()[-1]
        assert rtx[1] & 0x7F == 103 and struct.unpack("!H", rtx[12:14])[0] == first_early
        assert rtx[14:] == STAP_A_SPS
        assert forwarder.retransmit(late.outlet, [late.parsed()[0].sequence_number]) == 1  # no RTX: same packet
        assert late.receive() == [] and late.replayed == 1  # it had arrived: the viewer's SRTP drops the copy
        await asyncio.sleep(1.1)
        assert requests == [1, 1]  # the deferred request went out once the window passed
        assert forwarder.packets_forwarded == 5
    finally:
        early.close()
        late.close()


async def test_sender_reports_carry_each_viewers_own_counts():
    forwarder = _forwarder()
    first, second = LoopbackViewer(102), LoopbackViewer(102, cname="second")
    try:
        assert forwarder.send_sender_reports() == 0  # nothing forwarded yet: no timestamps to report
        forwarder.add_outlet(first.outlet)
        forwarder.forward_packet(_packet(1, STAP_A_SPS))
        forwarder.forward_packet(_packet(2, NON_IDR, 1))
        forwarder.add_outlet(second.outlet)
        forwarder.forward_packet(_packet(3, STAP_A_SPS, 1))
        forwarder.flush()
        assert forwarder.send_sender_reports() == 2
        first.receive()
        second.receive()
        for viewer, packets, octets in ((first, 3, 2 * len(STAP_A_SPS) + len(NON_IDR)),
                                        (second, 1, len(STAP_A_SPS))):
            report, sdes = viewer.rtcp[0]
            assert isinstance(report, RtcpSrPacket) and isinstance(sdes, RtcpSdesPacket)
            assert report.ssrc == forwarder.ssrc
            assert report.sender_info.packet_count == packets
            assert report.sender_info.octet_count == octets
            last_timestamp = viewer.parsed()[-1].timestamp
            assert 0 <= (report.sender_info.rtp_timestamp - last_timestamp) & 0xFFFFFFFF < 90000
            assert sdes.chunks[0].ssrc == forwarder.ssrc
            assert sdes.chunks[0].items == [(1, viewer.sender._RTCRtpSender__cname.encode())]
    finally:
        first.close()
        second.close()


async def test_a_full_socket_drops_and_counts_and_the_viewer_stays():
    forwarder = _forwarder()
    viewer = LoopbackViewer(102)
    stub = viewer.stub_socket()
    try:
        forwarder.add_outlet(viewer.outlet)
        forwarder.forward_packet(_packet(1, STAP_A_SPS, 1))
        forwarder.flush()  # the first packet to a viewer goes alone: it learns the SRTP tag length
        stub.sendmsg_errors.append(BlockingIOError())
        for seq in (2, 3):
            forwarder.forward_packet(_packet(seq, NON_IDR, seq == 3))
        forwarder.flush()  # two equal packets: one GSO send, which the socket refuses
        forwarder.forward_packet(_packet(4, STAP_A_SPS, 1))
        forwarder.flush()
        viewer.receive()
        assert [p.payload for p in viewer.parsed()] == [STAP_A_SPS, STAP_A_SPS]
        assert (forwarder.packets_forwarded, forwarder.packets_dropped, forwarder.send_errors) == (2, 2, 0)
    finally:
        viewer.close()


async def test_a_socket_that_refuses_segmentation_offload_gets_packets_one_by_one():
    forwarder = _forwarder()
    viewer = LoopbackViewer(102)
    stub = viewer.stub_socket()
    try:
        forwarder.add_outlet(viewer.outlet)
        forwarder.forward_packet(_packet(1, STAP_A_SPS, 1))
        forwarder.flush()
        stub.sendmsg_errors.append(OSError(5, "Input/output error"))
        for seq in (2, 3, 4):
            forwarder.forward_packet(_packet(seq, FU_A_IDR_MIDDLE, seq == 4))
        forwarder.flush()
        viewer.receive()
        assert [p.payload for p in viewer.parsed()] == [STAP_A_SPS] + [FU_A_IDR_MIDDLE] * 3
        assert not viewer.outlet.gso
        assert (forwarder.packets_forwarded, forwarder.packets_dropped, forwarder.send_errors) == (4, 0, 0)
    finally:
        viewer.close()


async def test_a_viewer_whose_socket_breaks_stops_receiving():
    forwarder = _forwarder()
    broken, healthy = LoopbackViewer(102), LoopbackViewer(102)
    try:
        for viewer in (broken, healthy):
            forwarder.add_outlet(viewer.outlet)
        forwarder.forward_packet(_packet(1, STAP_A_SPS, 1))
        forwarder.flush()
        broken.outlet.release()  # its descriptor is closed: sends fail with EBADF, and attach() cannot help
        forwarder.forward_packet(_packet(2, NON_IDR, 1))
        forwarder.flush()
        forwarder.forward_packet(_packet(3, NON_IDR, 1))
        forwarder.flush()
        assert len(broken.receive()) == 1 and len(healthy.receive()) == 3
        assert forwarder.send_errors == 1
        forwarder.remove_outlet(healthy.outlet)
        assert healthy.outlet.sock is None  # the outlet's own descriptor is closed with it
    finally:
        broken.close()
        healthy.close()


async def test_a_payload_too_long_to_protect_is_counted_and_not_sent():
    forwarder = _forwarder()
    viewer = LoopbackViewer(102)
    try:
        forwarder.add_outlet(viewer.outlet)
        forwarder.forward_packet(_packet(1, STAP_A_SPS, 1))
        forwarder.forward_packet(_packet(2, bytes([1]) * (PACKET_BYTES_MAX - 11), 1))  # 12-byte header: 1 too long
        forwarder.forward_packet(_packet(3, NON_IDR, 1))
        forwarder.flush()
        viewer.receive()
        assert [p.payload for p in viewer.parsed()] == [STAP_A_SPS, NON_IDR]
        assert (forwarder.packets_forwarded, forwarder.send_errors) == (2, 1)
    finally:
        viewer.close()
