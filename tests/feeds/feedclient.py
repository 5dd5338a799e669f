"""Helpers for the feeds tests: posting videos and reading feeds through the real HTTP API."""

from __future__ import annotations

from typing import Any

import aiohttp
from clips import make_mp4
from livenode import RunningNode

from feeds import FEEDS, Feeds


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def feeds_of(node: RunningNode) -> Feeds:
    return node.app[FEEDS]


async def upload(node: RunningNode, token: str, data: bytes | None = None, *, caption: str = "a clip",
                 hashtags: str = "", mature: bool = False, filename: str = "clip.mp4") -> aiohttp.ClientResponse:
    form = aiohttp.FormData()
    form.add_field("file", data if data is not None else make_mp4(), filename=filename, content_type="video/mp4")
    form.add_field("caption", caption)
    form.add_field("hashtags", hashtags)
    form.add_field("mature", "true" if mature else "false")
    async with node.http.post(f"{node.url}/api/videos", data=form, headers=auth(token)) as response:
        await response.read()
        return response


async def post_video(node: RunningNode, token: str, data: bytes | None = None, **fields: Any) -> dict[str, Any]:
    """Upload a video and wait for it to be processed; its public description."""
    response = await upload(node, token, data, **fields)
    assert response.status == 201, response.reason
    return await video(node, int((await response.json())["id"]))


async def video(node: RunningNode, video_id: int) -> dict[str, Any]:
    await feeds_of(node).processor.drain()
    async with node.http.get(f"{node.url}/api/videos/{video_id}") as response:
        assert response.status == 200
        return await response.json()


async def get_json(node: RunningNode, path: str, token: str | None = None) -> tuple[int, Any]:
    async with node.http.get(node.url + path, headers=auth(token) if token else {}) as response:
        return response.status, await response.json(content_type=None)
