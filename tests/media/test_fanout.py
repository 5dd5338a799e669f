"""The fan-out of one batch to many viewers: GSO runs, per-viewer SRTP in a shared buffer, one datagram a packet."""

from __future__ import annotations

import os
import struct
import sys

import pytest
from loopbackoutlets import CM_SHA1_80, GCM, LoopbackViewer

from livecore.media.fanout import GSO_SEGMENTS_MAX, FanOut, gso_run_ends

# one frame as aiortc's H.264 packetizer cuts it: a small NAL alone, then a large one in near-equal fragments
FRAME_SIZES = [700, 1100, 1100, 1099, 1099, 1099, 30]


def _packets(sizes: list[int], first_sequence_number: int = 1000) -> list[bytes]:
    return [bytes((0x80, 96)) + struct.pack("!HII", (first_sequence_number + i) & 0xFFFF, 90000, 0x1234)
            + os.urandom(size - 12) for i, size in enumerate(sizes)]


def test_runs_are_equal_sizes_with_a_shorter_last():
    assert gso_run_ends(FRAME_SIZES) == [True, False, False, True, False, False, True]
    assert gso_run_ends([]) == []
    assert gso_run_ends([5]) == [True]
    assert gso_run_ends([5, 6, 6]) == [True, False, True]
    assert gso_run_ends([9] * (GSO_SEGMENTS_MAX + 1)) == [False] * (GSO_SEGMENTS_MAX - 1) + [True, True]


@pytest.mark.parametrize("gso", [True, False])
def test_every_viewer_receives_every_packet_as_its_own_datagram(gso: bool):
    fan_out = FanOut()
    viewers = [LoopbackViewer(96, profile=profile) for profile in (GCM, CM_SHA1_80, GCM)]
    try:
        for viewer in viewers:
            viewer.outlet.gso = gso
        sends = [(v.outlet.srtp, v.outlet.sendto, v.outlet.sendmsg, v.outlet.addr, v.outlet) for v in viewers]
        broken: list = []
        sent_total = 0
        expected: list[bytes] = []
        for frame in range(3):  # the first batch teaches each outlet its tag length; the next ones use runs
            packets = _packets(FRAME_SIZES, 1000 + frame * len(FRAME_SIZES))
            expected += packets
            sent, dropped = fan_out.send(packets, sends, broken)
            sent_total += sent
            assert dropped == 0
        assert broken == []
        assert sent_total == 3 * len(FRAME_SIZES) * len(viewers)
        for viewer in viewers:
            viewer.receive()
            assert viewer.rtp == expected
            tag = viewer.outlet.tag_bytes
            assert tag == (10 if viewer.rx is viewers[1].rx else 16)
            assert viewer.datagram_sizes == [size + tag for size in FRAME_SIZES * 3]
    finally:
        for viewer in viewers:
            viewer.close()


@pytest.mark.skipif(sys.platform != "linux", reason="UDP segmentation offload is Linux's")
def test_equal_packets_leave_in_one_segmentation_offload_send():
    fan_out = FanOut()
    viewer = LoopbackViewer(96)
    stub = viewer.stub_socket()
    try:
        send = [(viewer.outlet.srtp, viewer.outlet.sendto, viewer.outlet.sendmsg, viewer.outlet.addr, viewer.outlet)]
        fan_out.send(_packets([100]), send, [])
        stub.calls.clear()
        packets = _packets(FRAME_SIZES, 2000)
        assert fan_out.send(packets, send, []) == (len(FRAME_SIZES), 0)
        assert stub.calls == ["sendto", "sendmsg", "sendmsg"]  # [700] [1100 1100 1099] [1099 1099 30]
        viewer.receive()
        assert viewer.rtp[1:] == packets
    finally:
        viewer.close()
