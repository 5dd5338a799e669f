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


async def follow(node: RunningNode, token: str, user_id: int) -> None:
    async with node.http.post(f"{node.url}/api/users/{user_id}/follow", headers=auth(token)) as response:
        assert response.status == 204, await response.text()


async def feed_page(node: RunningNode, feed: str, token: str, cursor: str | None = None,
                    limit: int = 20) -> dict[str, Any]:
    query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
    status, page = await get_json(node, f"/api/feed/{feed}{query}", token)
    assert status == 200, page
    return page


async def all_video_ids(node: RunningNode, feed: str, token: str, limit: int) -> list[int]:
    """Every video of a feed, page by page."""
    ids: list[int] = []
    cursor = None
    while True:
        page = await feed_page(node, feed, token, cursor, limit)
        ids += [item["video"]["id"] for item in page["items"] if item["kind"] == "video"]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids
