"""The forwarder's cache of the current group of pictures, through real SRTP sessions and sockets on loopback: a
joiner is sent the group from its keyframe and then the live packets as one continuous stream, without waiting for
(or asking for) a keyframe; a group over its bounds is not cached."""

from __future__ import annotations

import asyncio

from aiortc import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket
from loopbackoutlets import LoopbackViewer

from livecore.media.fanout import BATCH_PACKETS_MAX
from livecore.media.forwarder import CATCH_UP_BATCHES_PER_STEP, Forwarder, KeyframeRequests
from livecore.media.gopcache import GopCache

H264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102)
STAP_A_SPS = bytes([24, 0, 4, 0x67, 0x42, 0xC0, 0x1F, 0, 2, 0x68, 0xCE])
FU_A_IDR_START = bytes([28, 0x80 | 5, 0xAA])
FU_A_IDR_END = bytes([28, 0x40 | 5, 0xAB])
NON_IDR = bytes([1, 0xCC])
FRAME_TICKS = 6000  # 15 fps at 90 kHz


class Publisher:
    """Upstream packets as an H.264 packetizer sends them: a keyframe is SPS/PPS, then an IDR in fragments."""

    def __init__(self, forwarder: Forwarder) -> None:
        self.forwarder = forwarder
        self.sequence_number = 1000
        self.timestamp = 0

    def _send(self, payload: bytes, marker: int) -> None:
        self.forwarder.forward_packet(RtpPacket(payload_type=96, sequence_number=self.sequence_number,
                                                timestamp=self.timestamp, ssrc=1, payload=payload, marker=marker))
        self.sequence_number += 1

    def keyframe(self) -> None:
        self.timestamp += FRAME_TICKS
        for payload, marker in ((STAP_A_SPS, 0), (FU_A_IDR_START, 0), (FU_A_IDR_END, 1)):
            self._send(payload, marker)

    def delta_frame(self) -> None:
        self.timestamp += FRAME_TICKS
        self._send(NON_IDR, 1)


def _forwarder(requests: list[int], packets_max: int = 64, bytes_max: int = 64 * 1024) -> Forwarder:
    return Forwarder("video", H264, 1024, KeyframeRequests(1.0, lambda: requests.append(1)),
                     GopCache(packets_max, bytes_max))


def _assert_continuous(numbers: list[int]) -> None:
    assert numbers == [(numbers[0] + i) & 0xFFFF for i in range(len(numbers))], numbers


async def _drain(forwarder: Forwarder) -> None:
    for _ in range(100):  # the cached group leaves a few batches per loop iteration
        await asyncio.sleep(0)
    assert not forwarder._joining


async def test_a_joiner_gets_the_current_group_then_the_live_packets_without_a_keyframe_request():
    requests: list[int] = []
    forwarder = _forwarder(requests)
    publisher = Publisher(forwarder)
    first, joiner = LoopbackViewer(102), LoopbackViewer(98, 99)
    try:
        forwarder.add_outlet(first.outlet)  # nothing cached yet: it waits and asks for a keyframe
        assert requests == [1]
        publisher.delta_frame()  # mid-group: not cached, not sent
        publisher.keyframe()
        for _ in range(4):
            publisher.delta_frame()
        await asyncio.sleep(0)
        sent_to_first = first.receive()
        assert len(sent_to_first) == 7
        forwarder.add_outlet(joiner.outlet)
        assert requests == [1]  # the cached group starts it: no keyframe needed from the publisher
        publisher.delta_frame()  # live, in the same loop iteration as the join
        await _drain(forwarder)
        publisher.delta_frame()
        await asyncio.sleep(0)
        first.receive()
        joiner.receive()
        got = joiner.parsed()
        assert [p.payload for p in got] == [STAP_A_SPS, FU_A_IDR_START, FU_A_IDR_END] + [NON_IDR] * 6
        assert [p.payload_type for p in got] == [98] * 9
        _assert_continuous([p.sequence_number for p in got])
        assert [p.sequence_number for p in got] == [p.sequence_number for p in first.parsed()]  # no duplicate
        assert got[0].timestamp == got[1].timestamp == joiner.outlet.start_timestamp
        assert [p.timestamp for p in got[2:]] == [got[0].timestamp + i * FRAME_TICKS for i in range(7)]
        assert (forwarder.cached_starts, forwarder.keyframes_in) == (1, 1)
        # a NACK for a packet it had from the cache is answered: it was sent that packet
        assert forwarder.retransmit(joiner.outlet, [got[1].sequence_number]) == 1
    finally:
        first.close()
        joiner.close()


async def test_a_long_group_leaves_in_steps_and_a_new_keyframe_finishes_it_first():
    requests: list[int] = []
    forwarder = _forwarder(requests, packets_max=1000)
    publisher = Publisher(forwarder)
    joiner = LoopbackViewer(102)
    step = BATCH_PACKETS_MAX * CATCH_UP_BATCHES_PER_STEP
    try:
        publisher.keyframe()
        for _ in range(3 * step):
            publisher.delta_frame()
        forwarder.add_outlet(joiner.outlet)
        await asyncio.sleep(0)
        assert len(joiner.receive()) == step  # one step per loop iteration, not the whole group at once
        publisher.keyframe()  # the rest of the old group goes first, then the new keyframe
        await asyncio.sleep(0)
        joiner.receive()
        got = joiner.parsed()
        assert len(got) == 3 + 3 * step + 3
        _assert_continuous([p.sequence_number for p in got])
        assert [p.payload for p in got[-3:]] == [STAP_A_SPS, FU_A_IDR_START, FU_A_IDR_END]
        assert not forwarder._joining and requests == []
    finally:
        joiner.close()


async def test_a_group_over_its_bound_is_not_cached_and_joiners_wait_for_the_next_keyframe():
    requests: list[int] = []
    forwarder = _forwarder(requests, packets_max=5)
    publisher = Publisher(forwarder)
    joiner = LoopbackViewer(102)
    try:
        publisher.keyframe()
        for _ in range(3):  # 6 packets: one over the bound
            publisher.delta_frame()
        assert not forwarder.gop_cache.ready and forwarder.gop_cache.overflows == 1
        forwarder.add_outlet(joiner.outlet)
        assert requests == [1]
        publisher.delta_frame()
        await asyncio.sleep(0)
        assert joiner.receive() == []
        publisher.keyframe()
        await asyncio.sleep(0)
        joiner.receive()
        assert [p.payload for p in joiner.parsed()] == [STAP_A_SPS, FU_A_IDR_START, FU_A_IDR_END]
        assert forwarder.gop_cache.ready and forwarder.cached_starts == 0
        # payload bytes are bounded too
        small = _forwarder([], packets_max=100, bytes_max=len(STAP_A_SPS) + len(FU_A_IDR_START))
        Publisher(small).keyframe()
        assert not small.gop_cache.ready and small.gop_cache.overflows == 1
    finally:
        joiner.close()


async def test_the_cache_is_off_at_zero_and_for_audio():
    requests: list[int] = []
    forwarder = _forwarder(requests, packets_max=0)
    Publisher(forwarder).keyframe()
    assert not forwarder.gop_cache.ready
    opus = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
    audio = Forwarder("audio", opus, 64, KeyframeRequests(1.0, lambda: None), GopCache(64, 65536))
    assert not audio.gop_cache.enabled


async def test_a_joiner_whose_socket_breaks_while_catching_up_stops_and_the_others_go_on():
    requests: list[int] = []
    forwarder = _forwarder(requests)
    publisher = Publisher(forwarder)
    broken, healthy = LoopbackViewer(102), LoopbackViewer(102)
    try:
        publisher.keyframe()
        publisher.delta_frame()
        forwarder.add_outlet(broken.outlet)
        forwarder.add_outlet(healthy.outlet)
        broken.outlet.release()  # its descriptor is closed: sends fail with EBADF, and attach() cannot help
        await _drain(forwarder)
        publisher.delta_frame()
        await asyncio.sleep(0)
        assert broken.receive() == [] and len(healthy.receive()) == 5
        assert forwarder.send_errors == 1 and forwarder.viewers == 2
    finally:
        broken.close()
        healthy.close()
