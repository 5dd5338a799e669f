"""What the money benchmarks share: a `livecore serve` node on private embedded servers, the CPU meter over its
processes, and the HTTP helpers their clients use. Scripts in this folder import it as `benchnode`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from livecore.embedded import EmbeddedPostgres, EmbeddedValkey, free_port
from livecore.streams import streams
from loadtest.cpumeter import CpuMeter, ProcessGroup

START_S_MAX = 60.0
LIVE_UNTIL_MS = 253_402_300_000_000  # 9999-12-31: a benchmark's stream is never overdue


@dataclass
class BenchNode:
    """A node serving at `url` on its own PostgreSQL and Valkey, and a meter of their CPU and this client's."""

    url: str
    database_url: str
    server: subprocess.Popen[bytes]
    meter: CpuMeter
    redis_url: str = ""

    async def wait_ready(self, http: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + START_S_MAX
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{self.url}/readyz") as r:
                    if r.status == 200:
                        return
            assert time.monotonic() < deadline and self.server.poll() is None, "the node did not start"
            await asyncio.sleep(0.2)

    async def mark_live(self, stream_id: int) -> None:
        """Live as if a publisher were connected: the money benchmarks need a live room and send no media."""
        pool = await asyncpg.create_pool(self.database_url, min_size=1, max_size=1)
        try:
            assert await streams.mark_live(pool, stream_id, LIVE_UNTIL_MS)
        finally:
            await pool.close()


@contextlib.contextmanager
def bench_node(**settings: str) -> Iterator[BenchNode]:
    """A node with `settings` (LIVECORE_ names without the prefix, lower case) on throw-away embedded servers."""
    with tempfile.TemporaryDirectory(prefix="livecore-bench-") as directory:
        root = Path(directory)
        pg, valkey = EmbeddedPostgres(root / "postgres"), EmbeddedValkey(root / "valkey")
        try:
            database_url, redis_url = pg.start(), valkey.start()
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("LIVECORE_")}
            env.update(LIVECORE_DATABASE_URL=database_url, LIVECORE_REDIS_URL=redis_url, LIVECORE_SEED_DEMO="false",
                       LIVECORE_LOG_LEVEL="WARNING", LIVECORE_WORKERS="1")  # one node process, as measured so far
            env.update({f"LIVECORE_{name.upper()}": value for name, value in settings.items()})
            server = subprocess.Popen([sys.executable, "-m", "livecore", "serve", "--port", str(port),
                                       "--data-dir", str(root / "node")], env=env)
            try:
                yield BenchNode(f"http://127.0.0.1:{port}", database_url, server, _cpu_meter(server, pg, valkey),
                                redis_url)
            finally:
                server.terminate()
                server.wait(timeout=30)
        finally:
            valkey.stop()
            pg.stop()


def _cpu_meter(server: subprocess.Popen[bytes], pg: EmbeddedPostgres, valkey: EmbeddedValkey) -> CpuMeter:
    postmaster = int((pg.pgdata / "postmaster.pid").read_text().split()[0])
    valkey_pid = valkey.process.pid if valkey.process else None
    return CpuMeter([
        ProcessGroup("node", lambda: [server.pid], with_children=True),
        ProcessGroup("postgres", lambda: [postmaster], with_children=True),
        ProcessGroup("valkey", lambda: [valkey_pid] if valkey_pid else [], with_children=False),
        ProcessGroup("client", lambda: [os.getpid()], with_children=False),
    ])


async def call(http: aiohttp.ClientSession, method: str, url: str, token: str | None = None,
               body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """(status, JSON body) of one API call."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, url, json=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def sign_up(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    body = {"username": f"b{secrets.token_hex(5)}", "password": "benchmark pass", "birth_date": "1990-01-01",
            "region": "US"}
    status, account = await call(http, "POST", f"{url}/api/accounts", body=body)
    assert status == 201, account
    return account
