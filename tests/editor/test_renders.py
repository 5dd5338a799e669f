"""Render jobs end to end: clips uploaded, an edit decision list submitted over HTTP, rendered with PyAV in a
render process, and the result a ready feed video whose file is checked frame by frame and sample by sample."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
from editclient import clip, frames_at, rendered, sticker
from livenode import RunningNode
from soundclient import make_audio, new_sound
from sources import make_source

FRAME_MS = 1000 / 30
BLUE = (30, 40, 170)


def _streams(data: bytes) -> dict[str, object]:
    with av.open(io.BytesIO(data)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        return {"video": video.codec_context.name, "audio": audio.codec_context.name, "width": video.width,
                "height": video.height, "video_ms": float(video.duration * video.time_base) * 1000,
                "audio_ms": float(audio.duration * audio.time_base) * 1000, "frames": video.frames}


def _moov_before_mdat(data: bytes) -> bool:
    boxes, at = [], 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at:at + 4], "big")
        boxes.append(data[at + 4:at + 8])
        if size < 8:
            break
        at += size
    return b"moov" in boxes and boxes.index(b"moov") < boxes.index(b"mdat")


async def test_a_three_clip_edit_with_music_text_and_sticker_becomes_a_feed_video(node: RunningNode,
                                                                                  tmp_path: Path) -> None:
    creator = await node.signup()
    token = creator["token"]
    blue = await clip(node, token, make_source(tmp_path / "blue.mp4", seconds=2, colour=BLUE))
    red = await clip(node, token, make_source(tmp_path / "red.mp4", seconds=2, colour=(170, 30, 30)))
    green = await clip(node, token, make_source(tmp_path / "green.mp4", seconds=2, colour=(30, 150, 40),
                                               width=320, height=180))  # landscape: fitted with bars
    sound = await new_sound(node, token, data=make_audio(seconds=4), title="Hum", artist="Ada")
    disc = await sticker(node, token)
    decisions = {
        "clips": [{"clip_id": blue, "in_ms": 500, "out_ms": 1500},
                  {"clip_id": red, "in_ms": 0, "out_ms": 2000, "speed": 2.0,
                   "transition": {"kind": "crossfade", "duration_ms": 300}},
                  {"clip_id": green, "in_ms": 0, "out_ms": 1000, "speed": 0.5, "volume": 0.5}],
        "music": {"sound_id": sound["id"], "volume": 0.3},
        "texts": [{"text": "HELLO", "x": 100, "y": 900, "size_px": 96, "colour": "#ffffff"}],
        "stickers": [{"sticker_id": disc, "x": 400, "y": 200, "start_ms": 0, "end_ms": 800}],
        "caption": "three clips", "hashtags": ["#Edit"],
    }
    video, data = await rendered(node, token, decisions)
    expected_ms = 1000 + 1000 - 300 + 2000  # the red clip at 2x lasts 1 s, the green at 0.5x lasts 2 s
    facts = _streams(data)
    assert (facts["video"], facts["audio"], facts["width"], facts["height"]) == ("h264", "aac", 720, 1280)
    assert abs(facts["video_ms"] - expected_ms) <= FRAME_MS, facts
    assert abs(facts["audio_ms"] - expected_ms) <= FRAME_MS, facts
    assert abs(video["duration_ms"] - expected_ms) <= FRAME_MS, video
    assert _moov_before_mdat(data)
    assert video["sound_id"] == sound["id"] and video["hashtags"] == ["edit"] and video["caption"] == "three clips"
    blue_at, mixed_at, red_at, green_at = frames_at(data, [300, 850, 1400, 3000])
    assert blue_at[640, 100, 2] > 120 and blue_at[640, 100, 0] < 80  # the blue clip first
    assert red_at[640, 100, 0] > 120 and red_at[640, 100, 2] < 80  # then the red one
    assert 50 < mixed_at[640, 100, 0] < 150 and 50 < mixed_at[640, 100, 2] < 150  # in the crossfade: both
    assert green_at[640, 360, 1] > 100 and green_at[100, 360].max() < 30  # green, bars above the landscape clip
    assert (await node.http.get(node.url + video["thumbnail_url"])).status == 200
    # The sticker (a red disc on a transparent square at 400,200, until 800 ms): red in its middle, the video
    # itself through its transparent corners, gone after its time.
    assert _is_red(blue_at[260, 460]) and not _is_red(green_at[260, 460])
    corner = blue_at[202:212, 402:412].reshape(-1, 3).mean(axis=0)  # the bar is at x 384-400 in this frame
    assert np.abs(corner - BLUE).max() < 12, corner
    # The text, white at 100,900 at 96 px, and nowhere else.
    for frame in (blue_at, red_at, green_at):
        assert _white(frame[900:1000, 100:420]) > 500 and _white(frame[300:400, 100:420]) == 0


def _is_red(pixel: np.ndarray) -> bool:
    return bool(pixel[0] > 180 and pixel[1] < 80 and pixel[2] < 80)


def _white(region: np.ndarray) -> int:
    return int((region.min(axis=2) > 200).sum())


async def test_audio_and_video_stay_in_step_through_a_speed_change(node: RunningNode, tmp_path: Path) -> None:
    creator = await node.signup()
    token = creator["token"]
    plain = await clip(node, token, make_source(tmp_path / "plain.mp4", seconds=1))
    flash = await clip(node, token, make_source(tmp_path / "flash.mp4", seconds=2, flash_at_s=1.0))
    # The flash (and its beep) is 800 ms into the second clip's span, which plays at 1.5x after a 1 s clip.
    decisions = {"clips": [{"clip_id": plain, "out_ms": 1000},
                           {"clip_id": flash, "in_ms": 200, "out_ms": 2000, "speed": 1.5}]}
    _, data = await rendered(node, token, decisions)
    expected_ms = 1000 + 1800 / 1.5
    facts = _streams(data)
    assert abs(facts["video_ms"] - expected_ms) <= FRAME_MS and abs(facts["audio_ms"] - expected_ms) <= FRAME_MS
    flash_ms = 1000 + 800 / 1.5
    seen_ms, heard_ms = _flash_ms(data), _beep_ms(data)
    assert abs(seen_ms - flash_ms) <= FRAME_MS, seen_ms
    assert abs(heard_ms - seen_ms) < 40, (heard_ms, seen_ms)


def _flash_ms(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(video=0):
            if frame.to_ndarray(format="gray").mean() > 200:
                return float(frame.time) * 1000
    raise AssertionError("no white frame")


def _beep_ms(data: bytes) -> float:
    """When the loud beep starts (the tone under it is quiet)."""
    with av.open(io.BytesIO(data)) as container:
        chunks, rate = [], 48000
        for frame in container.decode(audio=0):
            rate = frame.sample_rate
            chunks.append(frame.to_ndarray()[0])
    samples = np.concatenate(chunks)
    loud = np.flatnonzero(np.abs(samples) > 0.4)
    assert loud.size, "no beep"
    return float(loud[0]) / rate * 1000
