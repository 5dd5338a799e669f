"""A livecore node under test: serving on a free port, with helpers that go through its real HTTP API."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from livecore.app import build_app
from livecore.config import Settings
from livecore.embedded import free_port
from livecore.node import NODE, Node
from livecore.streams import streams
from signaling import PLANE, Plane, protocol

T = TypeVar("T")
THREADED_NODE_START_S_MAX = 60.0

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




def node_settings(servers: Servers, port: int, **overrides: Any) -> Settings:
    """Settings for a test node on `port` that uses the session's embedded PostgreSQL and Valkey (unless
    `overrides` name others)."""
    return Settings(**{
        "host": "127.0.0.1", "port": port, "node_id": f"test-{port}", "database_url": servers.database_url,
        "redis_url": servers.redis_url, "seed_demo": False, "data_dir": servers.directory / f"node-{port}",
        **overrides,
    })


class ThreadedNode:
    """A node serving from its own thread and event loop, for clients that block (requests, the API fuzzer)."""

    def __init__(self, servers: Servers, **overrides: Any) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.settings = node_settings(servers, port, **overrides)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"node-{port}", daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self) -> ThreadedNode:
        self._thread.start()
        self.run(self._serve(), THREADED_NODE_START_S_MAX)
        return self

    @property
    def app(self) -> web.Application:
        assert self._runner is not None
        return self._runner.app

    @property
    def node(self) -> Node:
        return self.app[NODE]

    def run(self, coroutine: Coroutine[Any, Any, T], timeout_s: float = 30.0) -> T:
        """Run `coroutine` on the node's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout_s)

    def stop(self) -> None:
        if self._runner is not None:
            self.run(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _serve(self) -> None:
        self._runner = web.AppRunner(build_app(self.settings), handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.settings.host, self.settings.port).start()
