"""`livecore serve` as an operator runs it: embedded servers in the data dir, data kept across restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from livecore.embedded import free_port

START_S_MAX = 60.0


class Serve:
    """A `livecore serve` subprocess on its embedded defaults."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVECORE_")}
        self.log = open(data_dir.parent / f"serve-{self.port}.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "livecore", "serve", "--port", str(self.port), "--data-dir", str(data_dir)],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )

    async def wait_ready(self, http: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + START_S_MAX
        while time.monotonic() < deadline:
            assert self.process.poll() is None, Path(self.log.name).read_text()
            try:
                async with http.get(f"{self.url}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        pytest.fail(f"livecore serve did not become ready: {Path(self.log.name).read_text()}")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.log.close()
        return code


async def test_data_survives_a_restart_and_embedded_servers_stop(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    data_dir = tmp_path / "data"
    first = Serve(data_dir)
    await first.wait_ready(http)
    async with http.get(f"{first.url}/api/streams/1") as r:
        demo = await r.json()  # the seeded stream: waiting for its publisher, so not in /api/live yet
    assert demo["creator"]["username"] == "demo_creator" and demo["state"] == "created"
    body = {"username": "keeper", "password": "kept across restarts", "birth_date": "1990-01-01", "region": "DE"}
    async with http.post(f"{first.url}/api/accounts", json=body) as r:
        assert r.status == 201
    assert first.stop() == 0
    assert not _running(data_dir), "the embedded servers should stop with the node"

    second = Serve(data_dir)
    await second.wait_ready(http)
    try:
        async with http.post(f"{second.url}/api/sessions", json={"username": "keeper",
                                                                 "password": "kept across restarts"}) as r:
            assert r.status == 200
        async with http.get(f"{second.url}/api/streams/1") as r:
            assert (await r.json())["created_at"] == demo["created_at"]
    finally:
        assert second.stop() == 0


def _running(data_dir: Path) -> bool:
    found = subprocess.run(["pgrep", "-f", str(data_dir)], capture_output=True, text=True)
    return bool(found.stdout.strip())
