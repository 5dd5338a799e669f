"""Fixtures: the real embedded PostgreSQL and Valkey (once per session, free ports) and real livecore nodes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import uvloop
from aiohttp import web
from lbcluster import StartCluster, cluster_starter
from livenode import NodeFactory, RunningNode, Servers, node_settings
from nginxproxy import require_nginx
from valkeycluster import ValkeyCluster

from livecore.app import build_app
from livecore.clock import Clock
from livecore.embedded import EmbeddedPostgres, EmbeddedValkey, free_port

S = TypeVar("S", EmbeddedPostgres, EmbeddedValkey)

NODE_STOP_S_MAX = 30.0


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """Every test runs on uvloop, the loop a node runs on (livecore/worker.py): asyncio's own loop differs in
    ways the code can trip on (its timer handles are asyncio.TimerHandle, uvloop's are not)."""
    return {"uvloop": uvloop.new_event_loop}


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """With LIVECORE_TEST_VALKEY=cluster the nodes share a 3-primary Valkey Cluster instead of one Valkey (to run
    the suite's flows where a script or command whose keys span slots is refused; see README "Valkey Cluster")."""
    directory = tmp_path_factory.mktemp("servers")
    pg = EmbeddedPostgres(directory / "postgres")
    valkey = ValkeyCluster(directory / "valkey") if os.environ.get("LIVECORE_TEST_VALKEY") == "cluster" else \
        EmbeddedValkey(directory / "valkey")
    try:
        redis_url = valkey.start(replicas=0).url if isinstance(valkey, ValkeyCluster) else valkey.start()
        yield Servers(pg.start(), redis_url, directory)
    finally:
        valkey.stop()
        pg.stop()


@contextlib.asynccontextmanager
async def _running(server: S) -> AsyncIterator[S]:
    """An embedded server of the test's own, started in a thread (so the loop goes on) and stopped after."""
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


@pytest.fixture
async def own_postgres(tmp_path: Path) -> AsyncIterator[EmbeddedPostgres]:
    """A PostgreSQL of the test's own, for faults (stopping it) the session's servers must not see."""
    async with _running(EmbeddedPostgres(tmp_path / "postgres")) as server:
        yield server


@pytest.fixture
async def own_valkey(tmp_path: Path) -> AsyncIterator[EmbeddedValkey]:
    """A Valkey of the test's own, to kill or stop without the session's servers seeing it (beside `own_postgres`,
    whose user ids are the session database's too: their frequency caps must not meet)."""
    async with _running(EmbeddedValkey(tmp_path / "valkey")) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def node_factory(servers: Servers, http: aiohttp.ClientSession) -> AsyncIterator[NodeFactory]:
    started: list[RunningNode] = []

    async def start(clock: Clock | None = None, on: Servers | None = None, **overrides: Any) -> RunningNode:
        """A node on the session's servers, or `on` others (a test's own, for faults the session's must not see)."""
        port = free_port()
        settings = node_settings(on or servers, port, **overrides)
        runner = web.AppRunner(build_app(settings, clock), handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        running = RunningNode(f"http://127.0.0.1:{port}", runner, http)
        started.append(running)
        return running

    yield start
    for running in reversed(started):
        try:
            await asyncio.wait_for(running.stop(), NODE_STOP_S_MAX)
        except TimeoutError:
            # Say what the node was still waiting for, instead of hanging until the test timeout.
            for task in asyncio.all_tasks():
                task.print_stack(limit=6, file=sys.stderr)
            raise


@pytest.fixture
async def node(node_factory: NodeFactory) -> RunningNode:
    return await node_factory()


@pytest.fixture
async def start_cluster(servers: Servers, tmp_path: Path, http: aiohttp.ClientSession) -> AsyncIterator[StartCluster]:
    """`await start_cluster(nodes=2, **settings)`: `livecore serve` nodes behind Debian's nginx (see lbcluster.py)."""
    require_nginx()
    async with cluster_starter(servers, tmp_path, http) as start:
        yield start
