"""Helpers for the editor's sound and challenge tests: audio made with PyAV at run time, uploads and reads through
the real HTTP API."""

from __future__ import annotations

import io
from fractions import Fraction
from typing import Any

import aiohttp
import av
import numpy as np
from livenode import RunningNode

RATE_HZ = 44100


def make_audio(*, seconds: float = 2.0, codec: str = "libmp3lame", container_format: str = "mp3",
               frequency_hz: float = 440.0, with_video: bool = False) -> bytes:
    """A tone of `seconds` in `codec` inside `container_format`; with a (moving) video track when `with_video`."""
    out = io.BytesIO()
    with av.open(out, "w", format=container_format) as container:
        video = None
        if with_video:
            video = container.add_stream("libx264" if container_format == "mp4" else "mpeg4", rate=10)
            video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
            for index in range(int(seconds * 10)):
                picture = np.full((48, 64, 3), (index * 20) % 255, dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
                frame.pts, frame.time_base = index, Fraction(1, 10)
                container.mux(video.encode(frame))
            container.mux(video.encode(None))
        audio = container.add_stream(codec, rate=RATE_HZ)
        audio.layout = "mono"
        step = 1152 if codec == "libmp3lame" else 1024
        total = int(seconds * RATE_HZ)
        for start in range(0, total, step):
            t = np.arange(start, min(total, start + step)) / RATE_HZ
            tone = (0.2 * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32).reshape(1, -1)
            fmt = "s16" if codec == "pcm_s16le" else "fltp"
            samples = (tone * 32767).astype(np.int16) if fmt == "s16" else tone
            frame = av.AudioFrame.from_ndarray(samples, format=fmt, layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = RATE_HZ, start, Fraction(1, RATE_HZ)
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return out.getvalue()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def upload_sound(node: RunningNode, token: str, data: bytes | None = None, *, title: str = "A tune",
                       artist: str = "Some Artist", licence: str = "CC-BY-4.0", filename: str = "tune.mp3",
                       omit: tuple[str, ...] = ()) -> tuple[int, Any]:
    form = aiohttp.FormData()
    fields = {"title": title, "artist": artist, "licence": licence}
    for name, value in fields.items():
        if name not in omit:
            form.add_field(name, value)
    if "file" not in omit:
        form.add_field("file", data if data is not None else make_audio(), filename=filename,
                       content_type="application/octet-stream")
    async with node.http.post(f"{node.url}/api/sounds", data=form, headers=auth(token)) as response:
        return response.status, await response.json(content_type=None)


async def new_sound(node: RunningNode, token: str, **fields: Any) -> dict[str, Any]:
    status, sound = await upload_sound(node, token, **fields)
    assert status == 201, sound
    return sound


async def get_json(node: RunningNode, path: str, token: str | None = None) -> tuple[int, Any]:
    async with node.http.get(node.url + path, headers=auth(token) if token else {}) as response:
        return response.status, await response.json(content_type=None)


async def post_json(node: RunningNode, path: str, body: Any, token: str) -> tuple[int, Any]:
    async with node.http.post(node.url + path, json=body, headers=auth(token)) as response:
        return response.status, await response.json(content_type=None)


async def new_challenge(node: RunningNode, token: str, sound_id: int, hashtag: str, **extra: Any) -> dict[str, Any]:
    status, challenge = await post_json(node, "/api/challenges", {
        "hashtag": hashtag, "description": f"the #{hashtag} challenge", "sound_id": sound_id, **extra}, token)
    assert status == 201, challenge
    return challenge
