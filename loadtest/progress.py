"""The live progress line while a run sends and drains: connections, events/s, p50/p99, errors, server CPU."""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from loadtest.fleet import Fleet

REFRESH_S = 0.5
PLAIN_EVERY_S = 2.0  # when stderr is not a terminal, a plain line this often


class Progress:
    """`with Progress(...)`: a rich line on a terminal, plain lines otherwise."""

    def __init__(self, name: str, fleet: Fleet, samples: list[dict[str, Any]]) -> None:
        self.name = name
        self.fleet = fleet
        self.samples = samples
        self.console = Console(stderr=True)
        self.stage = "send"
        self.started = time.monotonic()
        self._last = (self.started, fleet.total("delivered"))
        self._rate = 0.0
        self._task: asyncio.Task[None] | None = None
        self._live: Live | None = None

    def phase(self, stage: str) -> None:
        self.stage = stage

    def line(self) -> str:
        now, delivered = time.monotonic(), self.fleet.total("delivered")
        if now - self._last[0] >= 1.0:
            self._rate = (delivered - self._last[1]) / (now - self._last[0])
            self._last = (now, delivered)
        workers = list(self.fleet.progress.values())
        p50 = max((w.get("p50_ms") or 0 for w in workers), default=0)
        p99 = max((w.get("p99_ms") or 0 for w in workers), default=0)
        cpu = ""
        if len(self.samples) >= 2:
            a, b = self.samples[-2], self.samples[-1]
            used = (b["cpu_s_local"] or b["cpu_s_metrics"]) - (a["cpu_s_local"] or a["cpu_s_metrics"])
            cpu = f" cpu {100 * used / max(1e-6, b['at'] - a['at']):.0f}%"
        return (f"{self.name} {self.stage} {now - self.started:5.1f}s viewers {self.fleet.total('connected'):,}"
                f" {self._rate:,.0f} ev/s p50/p99 {p50}/{p99} ms err {self.fleet.total('errors')}"
                f" resumes {self.fleet.total('resumes')}{cpu}")

    async def _refresh(self) -> None:
        last_plain = 0.0
        while True:
            await asyncio.sleep(REFRESH_S)
            text = self.line()
            if self._live is not None:
                self._live.update(Text(text))
            elif time.monotonic() - last_plain >= PLAIN_EVERY_S:
                last_plain = time.monotonic()
                self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def __enter__(self) -> Progress:
        if self.console.is_terminal:
            self._live = Live(Text(self.line()), console=self.console, refresh_per_second=4)
            self._live.__enter__()
        self._task = asyncio.get_running_loop().create_task(self._refresh())
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._live is not None:
            self._live.update(Text(self.line()))
            self._live.__exit__(kind, value, trace)
        else:
            self.console.print(self.line(), markup=False, highlight=False, soft_wrap=True)
