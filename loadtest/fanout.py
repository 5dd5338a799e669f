"""The fan-out benchmark: N viewers in one room, R events/s published, what arrives and what it costs.

One run against one server: start it, open a room, connect the viewers (in worker processes) and the
publishers (here), publish a short warm-up and let it settle, then measure a window of `duration_s` of
publishing plus the drain that follows it: delivered events, latency, and the server's CPU seconds.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from loadtest.cpumeter import CpuMeter, ProcessGroup
from loadtest.fleet import Fleet, split_round_robin
from loadtest.publisher import PublishCounts, Publisher
from loadtest.report import RunResult, Workload, merge_reports, viewers_missing
from loadtest.target import Target
from loadtest.worker import WorkerReport, WorkerSpec

CPU_SAMPLE_INTERVAL_S = 0.25
# No new chat or probe for this long ends the drain (or the warm-up's settling). Long enough to ride out a
# stalled server or a starved viewer process; the window still ends at the last receipt, so waiting costs
# only wall-clock time, not accuracy.
QUIET_S = 2.0
SETTLE_TIMEOUT_S = 60.0
LATENCY_SAMPLED_VIEWERS = 250  # about this many viewers' worth of frames are read for latency
CONNECT_TIMEOUT_PER_VIEWER_S = 0.05


@dataclass(frozen=True)
class Options:
    """How to drive a run, beyond the workload itself."""

    workers: int
    connect_per_s: float
    connect_concurrency_max: int
    publishers: int
    viewer_accounts: int
    warmup_events: int
    drain_timeout_s: float


def say(target: str, message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] [{target}] {message}", file=sys.stderr, flush=True)


async def run(target: Target, workload: Workload, options: Options) -> RunResult:
    """Start `target`, measure `workload` against it, stop it."""
    report = lambda message: say(target.name, message)  # noqa: E731
    started = time.monotonic()
    report("starting the server" if target.managed else "checking the server is ready")
    await target.start()
    try:
        report(f"server ready in {time.monotonic() - started:.1f} s")
        result = await _measure(target, workload, options, report)
    finally:
        if target.managed:
            report("stopping the server")
        target.stop()
    result.server_errors = target.logged_errors
    return result


async def _measure(
    target: Target, workload: Workload, options: Options, report: Callable[[str], None]
) -> RunResult:
    room = await target.open_room(options.viewer_accounts, options.publishers)
    fleet = Fleet(_worker_specs(room.viewer_urls(workload.viewers), target.subprotocol, workload, options))
    meter = CpuMeter([
        ProcessGroup("server", target.server_pids, with_children=True),
        ProcessGroup("clients", lambda: fleet.pids, with_children=False),
        ProcessGroup("publisher", lambda: [os.getpid()], with_children=False),
    ])
    sampler = asyncio.create_task(_sample_cpu(meter))
    chat_urls = [room.url_for(token) for token in room.publisher_tokens]
    publisher = Publisher(chat_urls, room.url_for(room.creator_token), target.subprotocol)
    try:
        connect_timeout_s = 60 + workload.viewers * CONNECT_TIMEOUT_PER_VIEWER_S
        await fleet.wait_connected(workload.viewers, report, connect_timeout_s)
        await publisher.connect()
        await _warm_up(fleet, publisher, workload, options, report)
        await fleet.reset()
        start = time.monotonic()
        wall_offset_s = time.time() - start
        counts = await _publish_watched(fleet, publisher, workload, meter, report)
        publish_s = time.monotonic() - start
        await _drain(fleet, counts, workload, options.drain_timeout_s, report)
        reports = await fleet.reports()
        last_received_s = max(r.last_workload_ns for r in reports) / 1e9 - wall_offset_s
        end = max(start + publish_s, last_received_s)
        meter.sample()
        cpu_s = meter.between(start, end)
        return _result(target.name, workload, counts, reports, cpu_s, end - start, publish_s)
    finally:
        sampler.cancel()
        publisher.close()
        await fleet.close()


def _worker_specs(
    urls: list[str], subprotocol: str, workload: Workload, options: Options
) -> list[WorkerSpec]:
    workers = max(1, min(options.workers, len(urls)))
    return [
        WorkerSpec(
            index=index,
            urls=chunk,
            subprotocols=(subprotocol,),
            connect_per_s=options.connect_per_s / workers,
            connect_concurrency_max=max(1, options.connect_concurrency_max // workers),
            sample_every_frames=max(1, workload.viewers // LATENCY_SAMPLED_VIEWERS),
        )
        for index, chunk in enumerate(split_round_robin(urls, workers))
    ]


async def _sample_cpu(meter: CpuMeter) -> None:
    while True:
        meter.sample()
        await asyncio.sleep(CPU_SAMPLE_INTERVAL_S)


async def _warm_up(
    fleet: Fleet, publisher: Publisher, workload: Workload, options: Options, report: Callable[[str], None]
) -> None:
    """A few events through every path before measuring, then wait until they have all arrived."""
    if options.warmup_events <= 0:
        return
    report(f"warm-up: {options.warmup_events} events")
    warmup_s = options.warmup_events / workload.rate_per_s
    await publisher.publish(workload.rate_per_s, warmup_s, workload.must_every)
    await _wait_quiet(fleet, SETTLE_TIMEOUT_S, expected=None)


async def _publish_watched(
    fleet: Fleet, publisher: Publisher, workload: Workload, meter: CpuMeter, report: Callable[[str], None]
) -> PublishCounts:
    """Publish the measured window while printing progress every second."""
    report(f"publishing {workload.rate_per_s:g} events/s for {workload.duration_s:g} s")
    publishing = asyncio.create_task(
        publisher.publish(workload.rate_per_s, workload.duration_s, workload.must_every)
    )
    start = time.monotonic()
    delivered_before, cpu_before, tick = 0, meter.sample().get("server", 0.0), start
    while not publishing.done():
        await asyncio.wait([publishing], timeout=1.0)
        now = time.monotonic()
        delivered = fleet.total("chat") + fleet.total("probes")
        cpu = meter.sample().get("server", 0.0)
        report(
            f"t={now - start:5.1f}s published {publisher.counts.chat_sent + publisher.counts.probes_sent:,} "
            f"delivered {delivered:,} ({(delivered - delivered_before) / (now - tick):,.0f}/s) "
            f"server CPU {100 * (cpu - cpu_before) / (now - tick):.0f}%"
        )
        delivered_before, cpu_before, tick = delivered, cpu, now
    return publishing.result()


async def _drain(
    fleet: Fleet, counts: PublishCounts, workload: Workload, timeout_s: float, report: Callable[[str], None]
) -> None:
    """Wait for what was published to arrive: everything if nothing is sampled, else until it stops coming."""
    connected = fleet.total("connected")
    chat_rate = counts.chat_sent / workload.duration_s if workload.duration_s else 0.0
    sampled = workload.display_per_s is not None and chat_rate > workload.display_per_s
    expected = None if sampled else connected * (counts.chat_sent + counts.probes_sent)
    reason = await _wait_quiet(fleet, timeout_s, expected)
    report(f"drain ended ({reason}): delivered {fleet.total('chat') + fleet.total('probes'):,}"
           + (f" of {expected:,} expected" if expected is not None else " (chat sampled)"))


async def _wait_quiet(fleet: Fleet, timeout_s: float, expected: int | None) -> str:
    """Until `expected` chat + probes arrived, or none arrived for QUIET_S, or `timeout_s` passed."""
    deadline = time.monotonic() + timeout_s
    last_count, last_change = -1, time.monotonic()
    while True:
        await asyncio.sleep(0.05)
        count = fleet.total("chat") + fleet.total("probes")
        now = time.monotonic()
        if expected is not None and count >= expected:
            return "all delivered"
        if count != last_count:
            last_count, last_change = count, now
        elif now - last_change >= QUIET_S:
            return f"nothing new for {QUIET_S:g} s"
        if now > deadline:
            return f"timeout after {timeout_s:g} s"


def _result(
    name: str,
    workload: Workload,
    counts: PublishCounts,
    reports: list[WorkerReport],
    cpu_s: dict[str, float],
    window_s: float,
    publish_s: float,
) -> RunResult:
    totals = merge_reports(reports)
    probes_per_viewer = totals.pop("probes_per_viewer")
    return RunResult(
        target=name,
        workload=workload,
        chat_published=counts.chat_sent,
        probes_published=counts.probes_sent,
        publish_lag_max_s=counts.lag_max_s,
        publisher_errors=dict(counts.errors),
        publisher_error_details=dict(counts.error_details),
        window_s=window_s,
        publish_s=publish_s,
        viewer_workers=len(reports),
        viewers_missing_probes=viewers_missing(probes_per_viewer, counts.probes_sent),
        cpu_s={category: round(seconds, 3) for category, seconds in cpu_s.items()},
        **totals,
    )


def default_workers() -> int:
    """One viewer process per core the server does not need, at least one and at most four."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def default_viewer_accounts(viewers: int) -> int:
    return max(1, math.ceil(viewers / 500))
