"""`livecore serve` and `livecore check` as an operator runs them: real subprocesses, their exit status and output."""

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
import orjson
import pytest

from livecore.embedded import free_port

START_S_MAX = 60.0
COMMAND_S_MAX = 60.0


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any LIVECORE_* variable, plus `settings` (given as LIVECORE_ names); one
    worker unless `settings` say otherwise, since the tests' nodes are one process each (a node id, a pid)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVECORE_")}
    env["LIVECORE_WORKERS"] = "1"
    env.update(settings)
    return env


class Serve:
    """A `livecore serve` subprocess (on its embedded defaults unless `env` names servers)."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.node_id = f"127.0.0.1-{self.port}"
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir.parent / f"serve-{self.port}-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "wb")
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "livecore", "serve", "--port", str(self.port), "--data-dir", str(data_dir),
             *args],
            env=env if env is not None else clean_env(), stdout=self.log, stderr=subprocess.STDOUT,
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
        """The first match of the regular expression `pattern` in what the node printed, once it has printed it."""
        deadline = time.monotonic() + timeout_s
        while (found := re.search(pattern, self.output())) is None:
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, f"livecore serve never printed {pattern!r}: {self.output()}"
            await asyncio.sleep(0.1)
        return found

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """SIGTERM as a service manager stops it, or SIGINT as Ctrl-C does."""
        self.process.send_signal(sig)
        return self._ended()

    def kill(self) -> int:
        """SIGKILL: no goodbye, as in a crash or an OOM kill."""
        self.process.send_signal(signal.SIGKILL)
        return self._ended()

    def end(self) -> None:
        """Kill it if it still runs: for a test's `finally`, so a failed test leaves no node running on against
        servers that are gone."""
        if self.process.poll() is None:
            self.kill()
        self.log.close()

    def _ended(self) -> int:
        code = self.process.wait(timeout=60)
        self.log.close()
        return code


def livecore(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `livecore ARGS` to its end."""
    return subprocess.run([sys.executable, "-m", "livecore", *args], env=env, capture_output=True, text=True,
                          timeout=COMMAND_S_MAX)


def the_one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one plain line a failed start prints on stderr; everything else there must be JSON log records and
    there must be no traceback."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    plain = [line for line in lines if not line.startswith("{")]
    assert len(plain) == 1 and plain[0].startswith("livecore: "), done.stderr
    for line in lines:
        if line.startswith("{"):
            orjson.loads(line)
    return plain[0]
