"""Helpers for the render tests: clips, stickers and edits through the real HTTP API, and reading what came out."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
from livenode import RunningNode
from PIL import Image

from editor import RENDERS, Renders

WAIT_S_MAX = 240.0  # renders share 2 cores with other test runs: generous, not a deadline the code must meet
POLL_S = 0.05


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def renders_of(node: RunningNode) -> Renders:
    return node.app[RENDERS]


async def upload(node: RunningNode, token: str, kind: str, data: bytes, filename: str = "clip.mp4",
                 content_type: str = "video/mp4") -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=filename, content_type=content_type)
    async with node.http.post(f"{node.url}/api/edits/{kind}", data=form, headers=auth(token)) as response:
        return response.status, await response.json(content_type=None)


async def clip(node: RunningNode, token: str, path: Path) -> int:
    status, body = await upload(node, token, "clips", path.read_bytes())
    assert status == 201, body
    return int(body["clip_id"])


def sticker_png(size: int = 120) -> bytes:
    """A square sticker: a red disc in the middle, fully transparent corners."""
    yy, xx = np.mgrid[0:size, 0:size]
    inside = (xx - size / 2) ** 2 + (yy - size / 2) ** 2 < (size * 0.4) ** 2
    rgba = np.zeros((size, size, 4), dtype=np.uint8)
    rgba[inside] = (230, 20, 20, 255)
    out = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(out, "PNG")
    return out.getvalue()


async def sticker(node: RunningNode, token: str, data: bytes | None = None) -> int:
    status, body = await upload(node, token, "stickers", data or sticker_png(), "sticker.png", "image/png")
    assert status == 201, body
    return int(body["sticker_id"])


async def submit(node: RunningNode, token: str, decisions: dict[str, Any]) -> tuple[int, Any]:
    async with node.http.post(f"{node.url}/api/edits", json=decisions, headers=auth(token)) as response:
        return response.status, await response.json(content_type=None)


async def edit_state(node: RunningNode, token: str, edit_id: int) -> dict[str, Any]:
    async with node.http.get(f"{node.url}/api/edits/{edit_id}", headers=auth(token)) as response:
        body = await response.json(content_type=None)
        assert response.status == 200, body
        return body


async def until_edit(node: RunningNode, token: str, edit_id: int, done: Any) -> dict[str, Any]:
    """Poll the edit until `done(edit)` holds (a bounded wait on other processes, not a deadline)."""
    deadline = time.monotonic() + WAIT_S_MAX
    while True:
        edit = await edit_state(node, token, edit_id)
        if done(edit):
            return edit
        assert time.monotonic() < deadline, f"edit never got there: {edit}"
        await asyncio.sleep(POLL_S)


async def finished(node: RunningNode, token: str, edit_id: int) -> dict[str, Any]:
    return await until_edit(node, token, edit_id, lambda e: e["state"] not in ("queued", "rendering"))


async def rendered(node: RunningNode, token: str, decisions: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """Submit, wait for the render, and fetch the video it became: (the video's record, its MP4)."""
    status, body = await submit(node, token, decisions)
    assert status == 202 and body["state"] == "queued", body
    edit = await finished(node, token, body["id"])
    assert edit["state"] == "done" and edit["progress"] == 1, edit
    async with node.http.get(f"{node.url}/api/videos/{edit['video_id']}") as response:
        video = await response.json()
    assert video["state"] == "ready", video
    async with node.http.get(node.url + video["video_url"]) as response:
        return video, await response.read()


def frames_at(data: bytes, times_ms: list[float]) -> list[np.ndarray]:
    """RGB frames of the MP4 shown at each time."""
    wanted = sorted(times_ms)
    found: list[np.ndarray] = []
    with av.open(io.BytesIO(data)) as container:
        last = None
        for frame in container.decode(video=0):
            while wanted and frame.time * 1000 > wanted[0] + 1:
                assert last is not None
                found.append(last)
                wanted.pop(0)
            last = frame.to_ndarray(format="rgb24")
            if not wanted:
                break
        found += [last] * len(wanted)
    order = sorted(range(len(times_ms)), key=lambda i: times_ms[i])
    result: list[np.ndarray] = [np.empty(0)] * len(times_ms)
    for position, index in enumerate(order):
        result[index] = found[position]
    return result


async def feed_video(node: RunningNode, token: str, path: Path) -> int:
    """Post a video to the feeds (H.264/AAC: kept as it is) and wait until it is ready; its id."""
    from feeds import FEEDS

    form = aiohttp.FormData()
    form.add_field("file", path.read_bytes(), filename="video.mp4", content_type="video/mp4")
    async with node.http.post(f"{node.url}/api/videos", data=form, headers=auth(token)) as response:
        body = await response.json(content_type=None)
        assert response.status == 201, body
    await node.app[FEEDS].processor.drain()
    return int(body["id"])


async def until(condition: Any, what: str) -> None:
    """Poll a condition on other processes (a bounded wait, not a deadline)."""
    deadline = time.monotonic() + WAIT_S_MAX
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(POLL_S)
