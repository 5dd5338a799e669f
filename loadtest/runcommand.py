"""`livecore-loadtest run`: a scenario from a TOML file and flags, against livecore (and peers), with a JSON
result, an HTML report and an SLO that sets the exit code."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

from loadtest import agent, htmlreport, outcome
from loadtest import ladder as ladder_steps
from loadtest import scenario as scenarios
from loadtest.servers import LivecoreServer
from loadtest.show import run as run_show

EXIT_SLO_MISSED = 1
EXIT_USAGE = 2

EPILOG = """\
A scenario file is TOML with the same names as the flags (underscores), in a [scenario] table or at the top:
  [scenario]
  viewers = 2000
  rooms = 2
  chat_per_s = 50        # per room
  must_per_s = 2         # must-deliver moderation events per room per second
  disconnects_per_s = 5  # induced network losses, each followed by a resume
  slo = "p99_ms=250,loss=0"
Flags override the file. Without --target a node is started on a throwaway data dir (its limits raised for
the benchmark accounts); with one or more --target the viewers spread over those nodes (which must share their
PostgreSQL and Redis, and allow the load). --peer also runs the same chat fan-out against a python-socketio server
with its Redis manager or a Node.js Socket.IO server with its Redis adapter, started here.

exit status: 0 when every --slo is met, 1 when one is missed, 2 on a usage error.

examples:
  livecore-loadtest run --viewers 500 --chat-rate 50 --duration 10 --html report.html
  livecore-loadtest run --scenario-file show.toml --slo p99_ms=250,loss=0 --json result.json
  livecore-loadtest run --viewers 500 --chat-rate 50 --peer python-socketio --peer node-socketio
"""

FLAGS: tuple[tuple[str, str, type, str], ...] = (
    ("--viewers", "viewers", int, "viewer connections"),
    ("--rooms", "rooms", int, "rooms the viewers are dealt over"),
    ("--encoding", "encoding", str, "json or msgpack"),
    ("--ramp", "ramp_per_s", float, "connections opened per second"),
    ("--duration", "duration_s", float, "seconds of sending"),
    ("--chat-rate", "chat_per_s", float, "chat messages per room per second"),
    ("--like-rate", "likes_per_s", float, "like taps per room per second"),
    ("--gift-rate", "gifts_per_s", float, "gifts per room per second (peers: relayed gift events)"),
    ("--bid-rate", "bids_per_s", float, "bids per room per second on an auction the tool opens"),
    ("--must-rate", "must_per_s", float, "must-deliver moderation events per room per second"),
    ("--chatters", "chatters", int, "sending accounts per room"),
    ("--gifters", "gifters", int, "accounts per room that buy coins and send gifts"),
    ("--bidders", "bidders", int, "accounts per room with a saved test card that bid"),
    ("--whep-viewers", "whep_viewers", int, "WebRTC viewers over WHEP (packets counted, not decoded)"),
    ("--hls-pullers", "hls_pullers", int, "HLS players fetching playlist and segments"),
    ("--churn", "churn_per_s", float, "viewers leaving (and new ones joining) per second"),
    ("--disconnects", "disconnects_per_s", float, "induced disconnects per second, each resumed"),
    ("--workers", "workers", int, "viewer processes"),
    ("--drain", "drain_s", float, "longest wait for deliveries after sending"),
    ("--display-rate", "display_per_s", int, "the started node's chat display rate per room"),
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "run", help="a scenario (flags or TOML) against livecore and peers: JSON, HTML report, SLO exit code",
        description="Run a scenario: viewers over rooms and nodes, chat, likes, gifts and must-deliver events at "
        "rates, churn and induced disconnects; account for every event; report.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario-file", type=Path, help="a TOML scenario")
    for flag, dest, kind, text in FLAGS:
        parser.add_argument(flag, dest=dest, type=kind, help=text)
    parser.add_argument("--target", dest="targets", action="append", help="a livecore node URL (repeatable)")
    parser.add_argument("--peer", dest="peers", action="append", choices=scenarios.PEERS,
                        help="also run the workload against this peer (repeatable)")
    parser.add_argument("--agent", dest="agents", action="append", metavar="HOST:PORT",
                        help="a `livecore-loadtest agent` that holds a share of the viewers (repeatable)")
    parser.add_argument("--agent-key", help="the agents' shared key (default: $LOADTEST_AGENT_KEY)")
    parser.add_argument("--peers-only", action="store_true", help="skip livecore, run only the peers")
    parser.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the started node, e.g. tick_ms_max=50 (repeatable)")
    parser.add_argument("--ladder", metavar="VIEWERSxRATE,...",
                        help="run each step (viewers x chat/s per room) in turn, e.g. 500x50,2000x100, and say "
                        "where each server fell over")
    parser.add_argument("--slo", help="e.g. p99_ms=250,loss=0; keys: " + ", ".join(scenarios.SLO_KEYS))
    parser.add_argument("--json", metavar="FILE", help="write the result as JSON ('-': stdout)")
    parser.add_argument("--html", metavar="FILE", type=Path, help="write the HTML report")
    parser.add_argument("--png-dir", type=Path, help="also write each plot as PNG into this folder")
    parser.set_defaults(run=run_command)


def _scenario(args: argparse.Namespace) -> scenarios.Scenario:
    overrides: dict[str, Any] = {dest: getattr(args, dest) for _, dest, _, _ in FLAGS}
    overrides["targets"] = args.targets
    overrides["peers"] = args.peers
    overrides["agents"] = args.agents
    if args.agent_key:
        os.environ[agent.KEY_ENV] = args.agent_key
    if args.slo is not None:
        overrides["slo"] = scenarios.parse_slo(args.slo)
    loaded = scenarios.load(args.scenario_file, overrides)
    if args.setting:
        extra = dict(pair.split("=", 1) for pair in args.setting if "=" in pair)
        settings = {**loaded.settings, **{k.strip().lower(): v for k, v in extra.items()}}
        loaded = scenarios.load(None, {**loaded.as_dict(), "settings": settings})
    return loaded


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def _run_all(scenario: scenarios.Scenario, peers_only: bool) -> list[dict[str, Any]]:
    from loadtest.peers import peer_server

    results = []
    if not peers_only:
        results.append(await run_show(LivecoreServer(scenario), scenario, say))
    for name in scenario.peers:
        server = peer_server(name)
        if server.missing:
            say(f"{name}: skipped: {server.missing}")
            results.append({"target": name, "skipped": server.missing})
            continue
        results.append(await run_show(server, scenario, say))
    return results


def run_command(args: argparse.Namespace) -> int:
    try:
        scenario = _scenario(args)
        steps = ladder_steps.parse_ladder(args.ladder) if args.ladder else [(scenario.viewers, scenario.chat_per_s)]
    except scenarios.ScenarioError as exc:
        print(f"livecore-loadtest run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    ladder = []
    for viewers, rate in steps:
        step = scenarios.load(None, {**scenario.as_dict(), "viewers": viewers, "chat_per_s": rate})
        results = uvloop.run(_run_all(step, args.peers_only))
        ran = [r for r in results if "skipped" not in r]
        verdicts = {r["target"]: outcome.slo_verdict(r, scenario.slo) for r in ran}
        ladder.append({"step": f"{viewers}x{rate:g}", "results": results, "ran": ran, "slo": verdicts,
                       "fell_over": {r["target"]: ladder_steps.fell_over(r) for r in ran}})
        verdict = verdicts.get(ran[0]["target"], []) if ran else []
        print(f"== {viewers:,} viewers x {rate:g} chat/s per room", file=sys.stderr)
        print(summary_text(ran, verdict), file=sys.stderr if args.json == "-" else sys.stdout)
    first_fall = ladder_steps.first_falls(ladder)
    slo_met = all(v["met"] for step in ladder for v in (step["slo"].get(step["ran"][0]["target"], [])
                                                         if step["ran"] else []))
    if len(ladder) > 1:
        print(ladder_steps.ladder_text(ladder, first_fall), file=sys.stderr if args.json == "-" else sys.stdout)
    _write(args, scenario, ladder, first_fall, slo_met)
    return 0 if slo_met else EXIT_SLO_MISSED


def _write(args: argparse.Namespace, scenario: scenarios.Scenario, ladder: list[dict[str, Any]],
           first_fall: dict[str, str | None], slo_met: bool) -> None:
    steps = [{k: v for k, v in step.items() if k != "ran"} for step in ladder]
    document = {"scenario": scenario.as_dict(), "results": ladder[0]["results"], "slo": ladder[0]["slo"],
                "slo_met": slo_met, "ladder": steps, "fell_over": first_fall}
    if args.json:
        text = json.dumps(document, indent=1, default=str)
        print(text) if args.json == "-" else Path(args.json).write_text(text + "\n")
    if args.html:
        title = f"livecore-loadtest: {scenario.name}, {scenario.duration_s:g} s per run"
        sections = [(f"{step['step']}: viewers x chat/s per room", step["ran"],
                     step["slo"].get(step["ran"][0]["target"], []) if step["ran"] else []) for step in ladder]
        args.html.write_text(htmlreport.render(title, sections, ladder_steps.ladder_html(ladder, first_fall)))
    if args.png_dir:
        htmlreport.save_png(ladder[0]["ran"], args.png_dir)


def summary_text(results: list[dict[str, Any]], verdict: list[dict[str, Any]]) -> str:
    width = max(len(label) for label, _ in htmlreport.ROWS) + 2
    lines = [f"{label:{width}}" + "".join(f"{value(r)!s:>30}" for r in results) for label, value in htmlreport.ROWS]
    header = f"{'':{width}}" + "".join(f"{r['target']:>30}" for r in results)
    slo = [f"SLO {'met' if v['met'] else 'MISSED'}: {v['slo']} <= {v['limit']:g} (measured {v['measured']})"
           for v in verdict]
    return "\n".join([header, *lines, *slo])
