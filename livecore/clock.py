"""The one source of time: deadlines, expiry and event timestamps all read it, so tests can drive it."""

from __future__ import annotations

import time


class Clock:
    """Wall-clock milliseconds from the system."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def now_s(self) -> float:
        return self.now_ms() / 1000


class ManualClock(Clock):
    """A clock that moves only when a test advances it."""

    def __init__(self, start_ms: int = 1_800_000_000_000) -> None:
        self._now_ms = start_ms

    def now_ms(self) -> int:
        return self._now_ms

    def advance(self, seconds: float) -> None:
        self._now_ms += int(seconds * 1000)
