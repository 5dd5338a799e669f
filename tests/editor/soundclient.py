"""Helpers for the editor's sound and challenge tests: audio made with PyAV at run time, uploads and reads through
the real HTTP API."""

from __future__ import annotations

import io
from fractions import Fraction
from typing import Any

import aiohttp
import av
import numpy as np
from clips import make_mp4
from livenode import RunningNode

from feeds import FEEDS

RATE_HZ = 44100


def make_audio(*, seconds: float = 2.0, codec: str = "libmp3lame", container_format: str = "mp3",
               frequency_hz: float = 440.0, with_video: bool = False, cover_art: bool = False) -> bytes:
    """A tone of `seconds` in `codec` inside `container_format`; with a (moving) video track when `with_video`, with
    an album picture (a still PNG marked as attached) when `cover_art`."""
    out = io.BytesIO()
    with av.open(out, "w", format=container_format) as container:
        rate = 48000 if codec == "libopus" else RATE_HZ  # Opus runs at 48 kHz only
        audio = container.add_stream(codec, rate=rate)
        audio.layout = "mono"
        video = picture = None
        if with_video:
            video = container.add_stream("libx264", rate=10)
            video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        if cover_art:
            picture = container.add_stream("png")
            picture.width, picture.height, picture.pix_fmt = 16, 16, "rgb24"
            picture.disposition = av.stream.Disposition.attached_pic
        if picture is not None:
            still = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 200, dtype=np.uint8), format="rgb24")
            still.pts, still.time_base = 0, Fraction(1, 1)
            container.mux(picture.encode(still))
            container.mux(picture.encode(None))
        if video is not None:
            for index in range(int(seconds * 10)):
                moving = np.full((48, 64, 3), (index * 20) % 255, dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(moving, format="rgb24")
                frame.pts, frame.time_base = index, Fraction(1, 10)
                container.mux(video.encode(frame))
            container.mux(video.encode(None))
        step = {"libmp3lame": 1152, "libopus": 960}.get(codec, 1024)
        total = int(seconds * rate)
        for start in range(0, total, step):
            t = np.arange(start, min(total, start + step)) / rate
            tone = (0.2 * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32).reshape(1, -1)
            fmt = "s16" if codec == "pcm_s16le" else "fltp"
            samples = (tone * 32767).astype(np.int16) if fmt == "s16" else tone
            frame = av.AudioFrame.from_ndarray(samples, format=fmt, layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            container.mux(audio.encode(frame))
        container.mux(audio.encode(None))
    return out.getvalue()


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def upload_sound(node: RunningNode, token: str, data: bytes | None = None, *, title: str = "A tune",
                       artist: str = "Some Artist", licence: str = "CC-BY-4.0", filename: str = "tune.mp3",
                       omit: tuple[str, ...] = ()) -> tuple[int, Any]:
    form = aiohttp.FormData(default_to_multipart=True)
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


async def post_video(node: RunningNode, token: str, *, sound_id: int | None = None, challenge_id: int | None = None,
                     hashtags: str = "", caption: str = "a clip", mature: bool = False) -> tuple[int, Any]:
    """Upload a short clip through `POST /api/videos` naming a sound and a challenge; (status, body)."""
    form = aiohttp.FormData()
    form.add_field("file", make_mp4(seconds=0.5), filename="clip.mp4", content_type="video/mp4")
    form.add_field("caption", caption)
    form.add_field("hashtags", hashtags)
    form.add_field("mature", "true" if mature else "false")
    if sound_id is not None:
        form.add_field("sound_id", str(sound_id))
    if challenge_id is not None:
        form.add_field("challenge_id", str(challenge_id))
    async with node.http.post(f"{node.url}/api/videos", data=form, headers=auth(token)) as response:
        return response.status, await response.json(content_type=None)


async def ready_video(node: RunningNode, token: str, **fields: Any) -> int:
    """A video posted and processed (ready); its id."""
    status, body = await post_video(node, token, **fields)
    assert status == 201, body
    await node.app[FEEDS].processor.drain()
    status, video = await get_json(node, f"/api/videos/{body['id']}")
    assert video["state"] == "ready", video
    return int(body["id"])
