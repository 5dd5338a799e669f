"""The print-on-demand simulator (fulfilment_sim) for tests: a real child process on a free port with its own store,
on a manual clock that tests move through its API (or, for pages that watch orders move by themselves, on its own
clock sped up `time_acceleration` times), and helpers to reach it."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

from livecore.embedded import free_port

START_S_MAX = 30.0


class PodSim:
    def __init__(self, directory: Path, http: aiohttp.ClientSession, failure_percent: int = 0,
                 time_acceleration: int | None = None) -> None:
        self.directory = directory
        self.http = http
        self.port = free_port()
        self.secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
        self.failure_percent = failure_percent
        self.time_acceleration = time_acceleration
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.directory / "sim.log").open("ab")
        clock = (["--manual-clock"] if self.time_acceleration is None
                 else ["--time-acceleration", str(self.time_acceleration)])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fulfilment_sim", "--port", str(self.port), "--data-dir", str(self.directory),
             *clock, "--failure-percent", str(self.failure_percent), "--random-seed", "7",
             "--tick-ms", "50", "--exit-with-parent"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "FULFILMENT_SIM_WEBHOOK_SECRET": self.secret})
        log.close()
        deadline = time.monotonic() + START_S_MAX
        while not self._healthy():
            assert self.process.poll() is None, (self.directory / "sim.log").read_text()
            assert time.monotonic() < deadline, "the simulator did not start"
            time.sleep(0.05)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, self.url + path, json=body) as response:
            return response.status, await response.json()

    async def advance(self, seconds: int) -> dict[str, Any]:
        """Move the simulator's clock on; the steps due are taken and their callbacks delivered before it answers."""
        status, body = await self.call("POST", "/v1/simulate/advance", {"seconds": seconds})
        assert status == 200, body
        return body

    async def happen(self, provider_order_id: str, action: str) -> dict[str, Any]:
        status, body = await self.call("POST", f"/v1/simulate/orders/{provider_order_id}/{action}")
        assert status == 200, body
        return body

    async def flush_callbacks(self) -> None:
        """Deliver every callback not delivered yet (those sent in the background too) before going on."""
        status, body = await self.call("POST", "/v1/simulate/deliver")
        assert status == 200, body

    async def pause_callbacks(self, node_url: str, paused: bool) -> None:
        status, body = await self.call("PUT", "/v1/webhook", {"url": node_url + "/api/fulfilment/webhook",
                                                              "paused": paused})
        assert status == 200, body

    async def callbacks(self, provider_order_id: str) -> list[dict[str, Any]]:
        """Every callback about an order, each signed as if it were sent now (to deliver by hand)."""
        status, body = await self.call("GET", f"/v1/simulate/orders/{provider_order_id}/webhooks")
        assert status == 200, body
        return body["webhooks"]


# Simulated seconds from confirmation: production starts, it ships, it is delivered (the simulator's defaults).
TO_PRODUCTION_S = 2 * 3600
TO_SHIPPED_S = 2 * 24 * 3600
TO_DELIVERED_S = 4 * 24 * 3600
