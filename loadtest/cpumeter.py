"""CPU seconds (user + system) of the processes under test, sampled often and read for any time window; the
system part (the kernel working for the process: for a fan-out server mostly its TCP sends) is kept apart too.

Processes are grouped: a server and its children, with any embedded Valkey or PostgreSQL split out by process
name (they are reported beside the server, not in it), the viewer workers, and the publishing parent. A
process that exits keeps its last reading, so a window's delta never goes negative.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psutil

BACKING_SERVICES = {"valkey": ("valkey", "redis"), "postgres": ("postgres",)}
NOT_BUSY = frozenset({"idle", "iowait", "guest", "guest_nice"})  # guest time is counted in user time already
MACHINE = "machine"  # every core's busy time, whoever used it: tells how loaded the machine was
# How often the process trees are walked again, to catch new processes (a walk reads all of /proc); in between
# only the known processes' times are read.
MEMBERS_REFRESH_S = 2.0

ProcessKey = tuple[int, float]  # (pid, create time)


def machine_busy_s() -> float:
    """CPU seconds all cores spent on anything but idling, since boot."""
    times = psutil.cpu_times()._asdict()
    return sum(seconds for name, seconds in times.items() if name not in NOT_BUSY)


@dataclass(frozen=True)
class ProcessGroup:
    name: str
    pids: Callable[[], Iterable[int]]
    with_children: bool


def backing_service(process_name: str) -> str | None:
    """The embedded service a process belongs to, judged by its name, or None."""
    for service, prefixes in BACKING_SERVICES.items():
        if process_name.startswith(prefixes):
            return service
    return None


def interpolate(samples: list[tuple[float, float]], at: float) -> float:
    """The value at time `at`, linear between the two samples around it (clamped at the ends)."""
    if not samples:
        return 0.0
    times = [t for t, _ in samples]
    index = bisect.bisect_left(times, at)
    if index == 0:
        return samples[0][1]
    if index == len(samples):
        return samples[-1][1]
    (t0, v0), (t1, v1) = samples[index - 1], samples[index]
    return v0 if t1 == t0 else v0 + (v1 - v0) * (at - t0) / (t1 - t0)


class CpuMeter:
    """Cumulative CPU seconds per category, with a history of samples to read windows from."""

    def __init__(self, groups: list[ProcessGroup]) -> None:
        self.groups = groups
        self._members: list[tuple[ProcessKey, psutil.Process, str]] = []
        self._members_found_at = -math.inf
        self._last_cpu_s: dict[ProcessKey, tuple[str, float, float]] = {}  # category, user + system, system
        self.history: dict[str, list[tuple[float, float]]] = {}
        self.kernel_history: dict[str, list[tuple[float, float]]] = {}

    def sample(self) -> dict[str, float]:
        """Read every process now; return cumulative CPU seconds per category."""
        now = time.monotonic()
        if now - self._members_found_at >= MEMBERS_REFRESH_S:
            self._members = self._find_members()
            self._members_found_at = now
        for key, process, category in self._members:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            self._last_cpu_s[key] = (category, times.user + times.system, times.system)
        totals: dict[str, float] = {MACHINE: machine_busy_s()}
        kernel: dict[str, float] = {}
        for category, cpu_s, system_s in self._last_cpu_s.values():
            totals[category] = totals.get(category, 0.0) + cpu_s
            kernel[category] = kernel.get(category, 0.0) + system_s
        for category, cpu_s in totals.items():
            self.history.setdefault(category, []).append((now, cpu_s))
        for category, cpu_s in kernel.items():
            self.kernel_history.setdefault(category, []).append((now, cpu_s))
        return totals

    def between(self, start: float, end: float, kernel: bool = False) -> dict[str, float]:
        """CPU seconds per category spent between two `time.monotonic()` instants (`kernel`: the system part)."""
        history = self.kernel_history if kernel else self.history
        return {
            category: interpolate(samples, end) - interpolate(samples, start)
            for category, samples in history.items()
        }

    def _find_members(self) -> list[tuple[ProcessKey, psutil.Process, str]]:
        found: dict[ProcessKey, tuple[psutil.Process, str]] = {}
        for group in self.groups:
            for process in _walk(group):
                try:
                    key = (process.pid, process.create_time())  # a pid can be reused; its start time cannot
                    category = backing_service(process.name()) or group.name
                except psutil.Error:
                    continue
                found.setdefault(key, (process, category))
        return [(key, process, category) for key, (process, category) in found.items()]


def _walk(group: ProcessGroup) -> list[psutil.Process]:
    members = []
    for pid in group.pids():
        try:
            root = psutil.Process(pid)
            members.append(root)
            if group.with_children:
                members.extend(root.children(recursive=True))
        except psutil.Error:
            continue
    return members
