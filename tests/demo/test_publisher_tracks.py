"""The demo publisher's tracks: H.264 packets aiortc can send as they are, with a keyframe every
KEYFRAME_INTERVAL_S (the track cannot answer keyframe requests, so this bounds a new viewer's wait), and the tone
in 20 ms Opus-ready frames."""

from __future__ import annotations

import time

import av

from livecore.demo.publisher import (
    AUDIO_FRAME_SAMPLES,
    FRAME_RATE_PER_S,
    KEYFRAME_INTERVAL_S,
    PictureTrack,
    ToneTrack,
)


def test_the_picture_is_h264_with_a_keyframe_every_interval() -> None:
    track = PictureTrack("Keyframes")
    gop = FRAME_RATE_PER_S * KEYFRAME_INTERVAL_S
    packets = [p for index in range(3 * gop) for p in track._encode(index, time.time())]
    assert len(packets) == 3 * gop, "zero-latency: one packet per frame, none held back"
    assert [p.pts for p in packets if p.is_keyframe] == [0, gop, 2 * gop]
    assert all(p.time_base == track.time_base for p in packets)
    decoder = av.CodecContext.create("h264", "r")
    frames = [f for p in packets[:gop] for f in decoder.decode(p)]
    assert frames and (frames[0].width, frames[0].height) == (1280, 720)
    assert b"\x00\x00\x00\x01\x67" in bytes(packets[gop]), "each keyframe carries its SPS for a joining viewer"


async def test_the_tone_comes_in_20_ms_mono_frames() -> None:
    track = ToneTrack()
    first, second = await track.recv(), await track.recv()
    assert (first.samples, first.sample_rate, first.format.name, first.layout.name) == (
        AUDIO_FRAME_SAMPLES, 48_000, "s16", "mono")
    assert second.pts - first.pts == AUDIO_FRAME_SAMPLES
