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
    blue = await clip(node, token, make_source(tmp_path / "blue.mp4", seconds=2, colour=(30, 40, 170)))
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
