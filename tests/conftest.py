"""Fixtures: the real embedded PostgreSQL and Valkey (once per session, free ports) and real livecore nodes."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from livecore.app import build_app
from livecore.clock import Clock
from livecore.config import Settings
from livecore.embedded import EmbeddedPostgres, EmbeddedValkey, free_port
from livecore.node import NODE, Node
from signaling import PLANE, Plane, protocol

_usernames = itertools.count(1)


@dataclass(frozen=True)
class Servers:
    database_url: str
    redis_url: str
    directory: Path


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    directory = tmp_path_factory.mktemp("servers")
    pg = EmbeddedPostgres(directory / "postgres")
    valkey = EmbeddedValkey(directory / "valkey")
    try:
        yield Servers(pg.start(), valkey.start(), directory)
    finally:
        valkey.stop()
        pg.stop()


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

    async def create_stream(self, token: str, title: str = "a test stream") -> dict:
        async with self.http.post(f"{self.url}/api/streams", json={"title": title},
                                  headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 201, await response.text()
            return await response.json()

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


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def node_factory(servers: Servers, http: aiohttp.ClientSession) -> AsyncIterator[NodeFactory]:
    started: list[RunningNode] = []

    async def start(clock: Clock | None = None, **overrides: Any) -> RunningNode:
        port = free_port()
        settings = Settings(
            host="127.0.0.1", port=port, node_id=f"test-{port}", database_url=servers.database_url,
            redis_url=servers.redis_url, seed_demo=False, data_dir=servers.directory / f"node-{port}",
            **overrides,
        )
        runner = web.AppRunner(build_app(settings, clock), handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        running = RunningNode(f"http://127.0.0.1:{port}", runner, http)
        started.append(running)
        return running

    yield start
    for running in reversed(started):
        await running.stop()


@pytest.fixture
async def node(node_factory: NodeFactory) -> RunningNode:
    return await node_factory()
