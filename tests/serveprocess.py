"""`livecore serve` as an operator runs it, in a subprocess on a free port: its output in a log file, readiness
and printed lines awaited, stopped with a signal like Ctrl-C or a service manager would."""

from __future__ import annotations

import asyncio
import os
import re
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
    """`livecore serve` with `args`; on the embedded defaults unless `env` names a database or Redis."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {k: v for k, v in os.environ.items() if not k.startswith("LIVECORE_")}
        self.log_path = data_dir.parent / f"serve-{self.port}.log"
        self.log = open(self.log_path, "wb")
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "livecore", "serve", "--port", str(self.port), "--data-dir", str(data_dir),
             *args],
            env={**environment, **(env or {})}, stdout=self.log, stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_ready(self, http: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + START_S_MAX
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                async with http.get(f"{self.url}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
        pytest.fail(f"livecore serve did not become ready: {self.output()}")

    async def wait_for_output(self, pattern: str, timeout_s: float = START_S_MAX) -> re.Match[str]:
        """The first match of `pattern` in what the node printed, once it has printed it."""
        deadline = time.monotonic() + timeout_s
        while (found := re.search(pattern, self.output())) is None:
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, f"livecore serve never printed {pattern!r}: {self.output()}"
            await asyncio.sleep(0.1)
        return found

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        self.log.close()
        return code
