"""A livecore node under test: serving on a free port, with helpers that go through its real HTTP API."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from livecore.node import NODE, Node
from livecore.streams import streams
from signaling import PLANE, Plane, protocol

_usernames = itertools.count(1)
LIVE_FOR_THE_TEST_MS = 253_402_300_000_000  # 9999-12-31: a test stream marked live is never overdue


@dataclass(frozen=True)
class Servers:
    database_url: str
    redis_url: str
    directory: Path


def unique_username(prefix: str = "u") -> str:
    return f"{prefix}{next(_usernames)}_{secrets.token_hex(3)}"


@dataclass
class RunningNode:
    """A livecore node serving on a free port, with helpers that go through its real HTTP API."""

    url: str
    runner: web.AppRunner
    http: aiohttp.ClientSession
    sockets: list[aiohttp.ClientWebSocketResponse] = field(default_factory=list)

    @property
    def app(self) -> web.Application:
        return self.runner.app

    @property
    def node(self) -> Node:
        return self.app[NODE]

    @property
    def plane(self) -> Plane:
        return self.app[PLANE]

    async def signup(self, username: str | None = None, birth_date: str = "1990-01-01", **extra: Any) -> dict:
        body = {"username": username or unique_username(), "password": "correct horse battery",
                "birth_date": birth_date, "region": "US", **extra}
        async with self.http.post(f"{self.url}/api/accounts", json=body) as response:
            assert response.status == 201, await response.text()
            return await response.json()

    async def create_stream(self, token: str, title: str = "a test stream", live: bool = True) -> dict:
        """A new stream through the API. `live` marks it live for the rest of the test as if a publisher were
        connected (for tests of rooms and money, which need a live stream but no media); tests of the media plane
        pass `live=False` and publish for real."""
        async with self.http.post(f"{self.url}/api/streams", json={"title": title},
                                  headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 201, await response.text()
            stream = await response.json()
        if live:
            assert await streams.mark_live(self.node.pool, stream["id"], LIVE_FOR_THE_TEST_MS)
            stream["state"] = "live"
        return stream

    async def ws(self, room_id: int, token: str | None = None, subprotocol: str = protocol.JSON,
                 since: str | None = None) -> aiohttp.ClientWebSocketResponse:
        params = {k: v for k, v in (("token", token), ("since", since)) if v}
        socket = await self.http.ws_connect(f"{self.url}/ws/rooms/{room_id}", params=params,
                                            protocols=[subprotocol])
        self.sockets.append(socket)
        return socket

    async def stop(self) -> None:
        for socket in self.sockets:
            await socket.close()
        await self.runner.cleanup()


NodeFactory = Callable[..., Awaitable[RunningNode]]


