"""`livecore-loadtest`: the load generator's command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvloop

from loadtest import agent, fanout, runcommand
from loadtest.report import (
    RunResult,
    Workload,
    checks,
    checks_text,
    load_warnings,
    ratio,
    server_error_lines,
    table,
)
from loadtest.target import LivecoreTarget, NaiveTarget, Target

DISPLAY_PER_S_DEFAULT = 120  # livecore's default chat_display_per_s_max


@dataclass(frozen=True)
class Scenario:
    viewers: int
    rate: float
    duration: float
    must_every: int
    summary: str


SCENARIOS = {
    "a": Scenario(2000, 100, 20, 0, "2,000 viewers, 100 chat events/s: everything delivered, p99 < 250 ms"),
    "b": Scenario(
        5000, 500, 20, 50,
        "5,000 viewers, 500 events/s: chat sampled to the display rate, every must-deliver delivered, "
        "p99 < 250 ms",
    ),
}
CUSTOM = Scenario(1000, 100, 10, 0, "custom workload")

FANOUT_EPILOG = """\
scenarios (the issue's targets; any flag given explicitly overrides the preset):
  a  2,000 viewers, 100 chat events/s for 20 s: everything delivered, p99 under 250 ms
  b  5,000 viewers, 500 events/s for 20 s, every 50th a must-deliver moderation event: chat sampled to the
     room's display rate, every must-deliver event delivered, p99 under 250 ms
  both also check (c): at least 5x the naive baseline's delivered events per server CPU-second.

By default the benchmark starts `livecore serve` on a free port with a throwaway data dir (embedded PostgreSQL
and Valkey included) and raises its per-user chat and connection limits for the benchmark accounts. Then it
starts the naive baseline (loadtest/naive_server.py, one `await ws.send_str` per event per connection, with a
private Valkey) and runs the same workload against it. Server CPU is user + system seconds of the server's
process tree over the measured window only (publishing plus the drain after it, not connecting or warming
up); Valkey and PostgreSQL are reported beside it. Latency runs from the publisher's send time (carried in
the chat text) to the kernel's receive timestamp on the viewer's socket, so the viewer process's own
queueing is left out (it is shown on its own line). Viewers decode and count in --workers processes; the
report warns when they, or other processes on the machine, were busy enough to skew the figures.

With --server-url the node is not started: its limits must already allow the workload (chat per user,
connections per user), and its CPU is measured only if it runs on this machine.

examples:
  livecore-loadtest fanout --scenario a
  livecore-loadtest fanout --scenario b --json results-b.json
  livecore-loadtest fanout --viewers 500 --rate 50 --duration 5 --skip-baseline
"""


def _settings(pairs: list[str]) -> dict[str, str]:
    settings = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"--server-setting expects NAME=VALUE, got {pair!r}")
        settings[name.strip().lower()] = value
    return settings


def fanout_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "fanout",
        help="viewers in one room, events published at a fixed rate: delivery, latency, server CPU",
        description="The fan-out benchmark: N WebSocket viewers in one room, R events/s published.\n"
        "Prints delivered events/s, p50/p99 delivery latency and server CPU seconds for livecore and for\n"
        "the naive baseline on the same workload, and their ratio.",
        epilog=FANOUT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    workload = parser.add_argument_group("workload")
    workload.add_argument("--scenario", choices=sorted(SCENARIOS), help="a preset from the issue (see below)")
    workload.add_argument("--viewers", type=int, help=f"viewer connections (default {CUSTOM.viewers})")
    workload.add_argument("--rate", type=float, help=f"events published per second (default {CUSTOM.rate:g})")
    workload.add_argument(
        "--duration", type=float, help=f"measured seconds of publishing (default {CUSTOM.duration:g})"
    )
    workload.add_argument(
        "--must-deliver-every", type=int, metavar="K",
        help="make every K-th publish a must-deliver moderation event from the creator (default: none)",
    )
    workload.add_argument(
        "--display-rate", type=float, default=DISPLAY_PER_S_DEFAULT,
        help="the room's chat display rate per second; set on the node that is started (default %(default)s)",
    )
    servers = parser.add_argument_group("servers")
    servers.add_argument("--server-url", help="measure a running livecore node instead of starting one")
    servers.add_argument("--data-dir", type=Path, help="data dir for the started node (default: a fresh one)")
    servers.add_argument(
        "--server-setting", action="append", default=[], metavar="NAME=VALUE",
        help="an extra livecore setting for the started node, e.g. tick_ms_max=100 (repeatable)",
    )
    servers.add_argument("--skip-baseline", action="store_true", help="do not run the naive baseline")
    servers.add_argument("--baseline-only", action="store_true", help="run only the naive baseline")
    clients = parser.add_argument_group("clients")
    clients.add_argument(
        "--workers", type=int, default=fanout.default_workers(),
        help="viewer processes (default %(default)s: one per core the server does not need)",
    )
    clients.add_argument(
        "--connect-rate", type=float, default=500, help="connections opened per second (default %(default)s)"
    )
    clients.add_argument(
        "--connect-concurrency", type=int, default=200, help="handshakes in flight (default %(default)s)"
    )
    clients.add_argument(
        "--publishers", type=int, default=4, help="chat publishers, one account each (default %(default)s)"
    )
    clients.add_argument("--accounts", type=int, help="accounts viewers share (default: 1 per 500)")
    clients.add_argument(
        "--warmup-events", type=int, default=20, help="events sent before measuring (default %(default)s)"
    )
    clients.add_argument(
        "--drain-timeout", type=float, default=10,
        help="seconds to wait for deliveries after publishing (default %(default)s)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE ('-': stdout)")
    parser.set_defaults(run=run_fanout)


def _workload(args: argparse.Namespace, display_per_s: float | None) -> Workload:
    preset = SCENARIOS[args.scenario] if args.scenario else CUSTOM

    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    return Workload(
        viewers=pick(args.viewers, preset.viewers),
        rate_per_s=pick(args.rate, preset.rate),
        duration_s=pick(args.duration, preset.duration),
        must_every=pick(args.must_deliver_every, preset.must_every),
        display_per_s=display_per_s,
    )


def _livecore_settings(args: argparse.Namespace, workload: Workload) -> dict[str, str]:
    """What the started node needs to let a handful of accounts carry the whole workload."""
    settings = {
        "chat_per_user_per_10s_max": str(10**9),
        "connections_per_user_max": str(10**9),
        "chat_display_per_s_max": f"{args.display_rate:g}",
        "log_level": "WARNING",  # a log line per connection would be measured as server CPU
        "seed_demo": "false",
    }
    settings.update(_settings(args.server_setting))
    return settings


async def _run_all(args: argparse.Namespace) -> list[RunResult]:
    workload = _workload(args, args.display_rate)
    options = fanout.Options(
        workers=args.workers,
        connect_per_s=args.connect_rate,
        connect_concurrency_max=args.connect_concurrency,
        publishers=args.publishers,
        viewer_accounts=args.accounts or fanout.default_viewer_accounts(workload.viewers),
        warmup_events=args.warmup_events,
        drain_timeout_s=args.drain_timeout,
    )
    runs: list[tuple[Target, Workload]] = []
    if not args.baseline_only:
        livecore = LivecoreTarget(args.server_url, args.data_dir, _livecore_settings(args, workload))
        runs.append((livecore, workload))
    if not args.skip_baseline:
        runs.append((NaiveTarget(), _workload(args, None)))  # the naive server samples nothing
    return [await fanout.run(target, run_workload, options) for target, run_workload in runs]


def run_fanout(args: argparse.Namespace) -> int:
    if args.skip_baseline and args.baseline_only:
        print("--skip-baseline and --baseline-only leave nothing to run", file=sys.stderr)
        return 2
    results = uvloop.run(_run_all(args))
    workload = results[0].workload
    title = (
        f"fan-out{f' scenario {args.scenario}' if args.scenario else ''}: {workload.viewers:,} viewers, "
        f"{workload.rate_per_s:g} events/s in for {workload.duration_s:g} s"
        + (f", every {workload.must_every}th must-deliver" if workload.must_every else "")
    )
    output = sys.stderr if args.json == "-" else sys.stdout
    print(table(title, results), file=output)
    by_target = {result.target: result for result in results}
    if "livecore" in by_target:
        print("targets:\n" + checks_text(checks(by_target["livecore"], by_target.get("naive"))), file=output)
    for line in [*load_warnings(results), *server_error_lines(results)]:
        print(line, file=output)
    if args.json:
        _write_json(args.json, args.scenario, results)
    return 0


def _write_json(path: str, scenario: str | None, results: list[RunResult]) -> None:
    by_target = {result.target: result for result in results}
    ours, naive = by_target.get("livecore"), by_target.get("naive")
    document = {
        "scenario": scenario,
        "cores": os.cpu_count(),
        "results": [result.as_dict() for result in results],
        "ratio_per_server_cpu_s": ratio(ours, naive) if ours else None,
        "ratio_per_server_and_backing_cpu_s": ratio(ours, naive, with_backing=True) if ours else None,
        "targets": [{"target": text, "met": met} for text, met in checks(ours, naive)] if ours else [],
        "warnings": load_warnings(results),
    }
    text = json.dumps(document, indent=2, default=str)
    if path == "-":
        print(text)
    else:
        Path(path).write_text(text + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="livecore-loadtest", description="Load generator for livecore.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fanout_parser(commands)
    runcommand.add_parser(commands)
    agent.add_parser(commands)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
