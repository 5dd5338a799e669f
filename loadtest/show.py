"""One scenario run against one server: start it, fill its rooms, connect the audience, send, drain, account.

The measured window runs from the first send to the last delivery (or the end of the drain). Server CPU is read
from the process tree when the server runs here (embedded Valkey and PostgreSQL apart), and from `/metrics`
otherwise; both are kept with a one-second timeline for the report.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import psutil

from loadtest import agent, outcome, wire
from loadtest.cpumeter import CpuMeter, ProcessGroup, backing_service
from loadtest.crowd import CrowdReport, CrowdSpec, run_crowd
from loadtest.fleet import Fleet, split_round_robin
from loadtest.media import Spectators
from loadtest.observer import Observer, ObserverProcess
from loadtest.progress import Progress
from loadtest.scenario import Scenario
from loadtest.scrape import scrape
from loadtest.traffic import Rates, Traffic, TrafficCounts
from loadtest.venue import Venue

QUIET_S = 2.0  # no new delivery for this long ends the drain
SAMPLE_S = 1.0
CONNECT_TIMEOUT_PER_VIEWER_S = 0.05
# No induced disconnect or churn in the send phase's last second: a resume that missed nothing hears nothing until
# the next event, so one made after the last event would end the run neither replayed nor reset.
AGITATION_TAIL_S = 1.0
GENERATOR_BUSY_SHARE_MAX = 0.85  # a viewer process busier than this may be what limits the figures


class Server(Protocol):
    name: str
    managed: bool

    async def start(self) -> None: ...
    def stop(self) -> None: ...
    def server_pids(self) -> list[int]: ...
    async def venue(self, scenario: Scenario) -> Venue: ...


async def run(server: Server, scenario: Scenario, say: Callable[[str], None]) -> dict[str, Any]:
    """Start `server`, measure `scenario` against it, stop it; the run's result as a JSON-ready dict."""
    say(f"{server.name}: starting" if server.managed else f"{server.name}: checking it is ready")
    try:
        await server.start()
        venue = await server.venue(scenario)
        try:
            result = await _measure(server, venue, scenario, say)
        finally:
            await venue.close()
    finally:
        server.stop()
    result["server"]["logged_errors"] = getattr(server, "logged_errors", {})
    return result


def _specs(venue: Venue, scenario: Scenario) -> list[CrowdSpec]:
    """One spec per local worker, then one per agent, the viewers dealt over all of them."""
    seats = venue.seats(scenario.viewers)
    parts = max(1, min(scenario.workers + len(scenario.agents), len(seats)))
    return [
        CrowdSpec(
            index=index, wire=venue.wire, seats=chunk, connect_per_s=scenario.ramp_per_s / parts,
            connect_concurrency_max=max(1, 200 // parts), sample_every_frames=scenario.latency_sample_every(),
            churn_per_s=scenario.churn_per_s / parts, disconnects_per_s=scenario.disconnects_per_s / parts,
        )
        for index, chunk in enumerate(split_round_robin(seats, parts))  # type: ignore[arg-type]
    ]


async def _fleet(venue: Venue, scenario: Scenario) -> tuple[Fleet, dict[int, agent.ClockOffset]]:
    """Local worker processes and the agents' workers, and each agent's clock offset by worker index."""
    specs = _specs(venue, scenario)
    local, remote_specs = specs[: len(specs) - len(scenario.agents)], specs[len(specs) - len(scenario.agents):]
    key = agent.agent_key(None) if remote_specs else b""
    remote, offsets = [], {}
    for address, spec in zip(scenario.agents, remote_specs, strict=False):
        connection, offset = await asyncio.to_thread(agent.connect, agent.parse_address(address), key, spec)
        remote.append((connection, spec))
        offsets[spec.index] = offset
    return Fleet(local, entry=run_crowd, remote=remote), offsets


def _on_our_clock(reports: list[CrowdReport], offsets: dict[int, agent.ClockOffset]) -> None:
    """Agents measured latency on their own clocks; move their counts onto this machine's."""
    for report in reports:
        offset = offsets.get(report.index)
        if offset is None:
            continue
        tally = report.tally
        for histogram in [*tally.latency.values(), *tally.latency_per_s.values()]:
            histogram.counts = Counter(agent.shifted(histogram.counts, offset.offset_ms))


async def _measure(server: Server, venue: Venue, scenario: Scenario, say: Callable[[str], None]) -> dict[str, Any]:
    watchers = ObserverProcess(venue.observer_urls(), venue.wire)
    await watchers.ready()
    fleet, offsets = await _fleet(venue, scenario)
    meter = CpuMeter([
        ProcessGroup("server", server.server_pids, with_children=True),
        ProcessGroup("generator", lambda: fleet.pids, with_children=False),
    ])
    rates = Rates(scenario.chat_per_s, scenario.likes_per_s, scenario.gifts_per_s, scenario.bids_per_s,
                  scenario.must_per_s)
    traffic = Traffic(venue.sender_lists(), rates, venue.wire)
    samples: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        pids = server.server_pids()
        sampler = asyncio.create_task(_sample(session, venue, fleet, meter, pids, samples))
        try:
            timeout_s = 60 + scenario.viewers * CONNECT_TIMEOUT_PER_VIEWER_S
            await fleet.wait_connected(scenario.viewers, lambda m: say(f"{server.name}: {m}"), timeout_s)
            await traffic.connect()
            spectators = Spectators(venue.node_urls[0], venue.rooms, scenario.whep_viewers, scenario.hls_pullers)
            await spectators.start(session)
            with Progress(server.name, fleet, samples) as progress:
                start_wall, start = time.time(), time.monotonic()
                agitation = asyncio.create_task(_agitate(fleet, scenario.duration_s - AGITATION_TAIL_S))
                try:
                    counts = await traffic.run(scenario.duration_s)
                    await agitation
                finally:
                    agitation.cancel()  # the run failed: the fleet is closed below
                progress.phase("drain")
                drained = await _drain(fleet, scenario.drain_s)
            # The window ends with the last delivery: a drain that ended on quiet waited QUIET_S past it.
            window_s = time.monotonic() - start - (QUIET_S if drained.startswith("nothing new") else 0.0)
            reports = [reply["report"] for reply in await fleet.ask("report")]
            observers = await watchers.collect()
            _on_our_clock(reports, offsets)
            media_figures = await spectators.finish()
            last_sample = await _sample_once(session, venue, fleet, meter, pids)
        finally:
            sampler.cancel()
            traffic.close()
            watchers.close()
            await fleet.close()
    run = Run(scenario, venue, reports, observers, counts, offsets, len(fleet.processes) - len(offsets))
    cpu = meter.between(start, start + window_s)
    result = _result(server.name, run, window_s, drained, start_wall)
    result["timeline"] = _timeline(result.pop("viewer_timeline"), samples, start)
    result["server"] = _server_figures(cpu, samples, last_sample, start)
    result["server"]["kernel_cpu_s"] = round(meter.between(start, start + window_s, kernel=True).get("server", 0.0), 3)
    result["generator"] = _generator_figures(cpu, window_s, run.local_workers)
    result["media"] = media_figures
    return _with_rates(result, window_s)


async def _agitate(fleet: Fleet, seconds: float) -> None:
    """Churn and disconnects (as the scenario sets them) for `seconds`."""
    fleet.tell("agitate")
    await asyncio.sleep(max(0.0, seconds))
    await fleet.ask("calm")


@dataclass(frozen=True)
class Run:
    """What one measured run collected, for assembling its result."""

    scenario: Scenario
    venue: Venue
    reports: list[CrowdReport]
    observers: list[Observer]
    counts: TrafficCounts
    offsets: dict[int, agent.ClockOffset]
    local_workers: int


def _result(name: str, run: Run, window_s: float, drained: str, start_wall: float) -> dict[str, Any]:
    result: dict[str, Any] = {
        "target": name, "wire": run.venue.wire, "nodes": run.venue.node_urls, "rooms": len(run.venue.rooms),
        "scenario": run.scenario.as_dict(), "window_s": round(window_s, 2), "drain": drained,
        "senders": outcome.senders(run.counts, run.observers),
        "accounting": outcome.accounting(run.reports, run.observers),
        "latency": outcome.latency(run.reports),
        "viewers": outcome.viewers(run.reports),
        "viewer_timeline": outcome.timeline(run.reports, start_wall),
        "agents": {run.scenario.agents[n]: {"offset_ms": round(o.offset_ms, 2),
                                            "round_trip_ms": round(o.round_trip_ms, 2)}
                   for n, o in enumerate(run.offsets.values())},
    }
    if run.venue.wire == wire.SOCKETIO:
        per_room = Counter(record.room for report in run.reports for record in report.records)
        outcome.add_unrelayed(result["accounting"], run.counts.sent, run.observers, per_room, len(run.venue.rooms))
    return result


def _with_rates(result: dict[str, Any], window_s: float) -> dict[str, Any]:
    delivered = sum(result["accounting"]["delivered"].values())
    cpu_s = result["server"]["cpu_s"]
    result["delivered_per_s"] = round(delivered / window_s, 1) if window_s else 0.0
    result["delivered_per_server_cpu_s"] = round(delivered / cpu_s, 1) if cpu_s else None
    return result


async def _drain(fleet: Fleet, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    last, changed = -1, time.monotonic()
    while True:
        await asyncio.sleep(0.1)
        count, now = fleet.total("delivered"), time.monotonic()
        if count != last:
            last, changed = count, now
        elif now - changed >= QUIET_S:
            return f"nothing new for {QUIET_S:g} s"
        if now > deadline:
            return f"stopped after {timeout_s:g} s"


def local_rss_bytes(pids: list[int]) -> float:
    """Resident memory of the server's own processes here (not its Valkey or PostgreSQL)."""
    total = 0.0
    for pid in pids:
        try:
            process = psutil.Process(pid)
            if backing_service(process.name()) is None:
                total += process.memory_info().rss
        except psutil.Error:
            continue
    return total


async def _sample_once(
    session: aiohttp.ClientSession, venue: Venue, fleet: Fleet, meter: CpuMeter, pids: list[int]
) -> dict[str, Any]:
    scraped = await asyncio.gather(*(scrape(session, url) for url in venue.node_urls))
    local = meter.sample()
    return {
        "at": time.monotonic(), "connected": fleet.total("connected"), "delivered": fleet.total("delivered"),
        "errors": fleet.total("errors"), "resumes": fleet.total("resumes"),
        "cpu_s_local": local.get("server", 0.0),
        "cpu_s_metrics": sum(s.get("cpu_s", 0.0) for s in scraped),
        "rss_bytes": sum(s.get("rss_bytes", 0.0) for s in scraped) or local_rss_bytes(pids),
        "metrics": scraped,
    }


async def _sample(
    session: aiohttp.ClientSession, venue: Venue, fleet: Fleet, meter: CpuMeter, pids: list[int],
    samples: list[dict[str, Any]],
) -> None:
    while True:
        samples.append(await _sample_once(session, venue, fleet, meter, pids))
        await asyncio.sleep(SAMPLE_S)


def _cpu_of(sample: dict[str, Any]) -> float:
    return sample["cpu_s_local"] or sample["cpu_s_metrics"]


def _timeline(rows: list[dict[str, Any]], samples: list[dict[str, Any]], start: float) -> list[dict[str, Any]]:
    """The viewers' per-second figures joined with the server's sampled ones (CPU share, memory, connections)."""
    by_second: dict[int, dict[str, Any]] = {row["t"]: dict(row) for row in rows}
    for before, after in itertools.pairwise(samples):
        second = int(after["at"] - start)
        span = after["at"] - before["at"]
        row = by_second.setdefault(second, {"t": second, "delivered": 0, "p50_ms": None, "p99_ms": None})
        row["cpu_pct"] = round(100 * (_cpu_of(after) - _cpu_of(before)) / span, 1) if span > 0 else None
        row["rss_mb"] = round(after["rss_bytes"] / 1e6, 1)
        row["connected"] = after["connected"]
        row["errors"] = after["errors"]
    return [by_second[t] for t in sorted(by_second) if t >= -1]


def _generator_figures(cpu: dict[str, float], window_s: float, workers: int) -> dict[str, Any]:
    """How busy this machine's viewer processes were: near a full core each, they, not the server, may be what
    limited delivery and latency."""
    busy = cpu.get("generator", 0.0) / (window_s * max(1, workers)) if window_s else 0.0
    return {"cpu_s": round(cpu.get("generator", 0.0), 3), "busy_share": round(busy, 3),
            "saturated": busy > GENERATOR_BUSY_SHARE_MAX}


def _server_figures(
    cpu: dict[str, float], samples: list[dict[str, Any]], last: dict[str, Any], start: float
) -> dict[str, Any]:
    """Server CPU over the window: the local process tree if there is one, else the nodes' own counters."""
    inside = [s for s in samples if s["at"] >= start] or [last]
    metrics_cpu = last["cpu_s_metrics"] - inside[0]["cpu_s_metrics"]
    local_cpu = cpu.get("server", 0.0)
    return {
        "cpu_s": round(local_cpu or metrics_cpu, 3),
        "cpu_source": "process tree" if local_cpu else "/metrics",
        "cpu_s_metrics": round(metrics_cpu, 3),
        "backing_cpu_s": {k: round(v, 3) for k, v in cpu.items() if k in ("valkey", "postgres")},
        "rss_mb_max": round(max((s["rss_bytes"] for s in samples), default=0.0) / 1e6, 1),
        "node_metrics_at_end": last["metrics"],
    }


def run_tag() -> str:
    """A short tag that keeps one run's accounts apart from another's on a reused node."""
    return secrets.token_hex(3) + str(os.getpid() % 100)
