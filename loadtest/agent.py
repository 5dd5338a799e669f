"""`livecore-loadtest agent`: another machine's viewers joining one run.

The agent listens with `multiprocessing.connection.Listener` (messages authenticated with a shared key, HMAC); a
run connects, asks for the agent's clock a few times, then sends a CrowdSpec. The agent forks a crowd process
that talks over that same connection exactly as a local worker talks over its pipe, so to the run an agent is
one more worker. The clock offset (agent minus coordinator, NTP style from the exchange with the shortest round
trip) lets the run correct the agent's latencies, which it measured against its own clock.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

from loadtest.crowd import CrowdSpec, run_crowd

CLOCK_PROBES = 8
KEY_ENV = "LOADTEST_AGENT_KEY"  # not LIVECORE_: a node refuses settings it does not know
CLOCK = "clock"


@dataclass(frozen=True)
class ClockOffset:
    offset_ms: float  # the agent's wall clock minus this machine's
    round_trip_ms: float  # of the probe the estimate came from: the estimate is within half of it


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host or "0.0.0.0", int(port)


def estimate_offset(samples: list[tuple[float, float, float]]) -> ClockOffset:
    """From (sent, agent time, received) triples: the offset of the one with the shortest round trip."""
    sent, agent_s, received = min(samples, key=lambda s: s[2] - s[0])
    return ClockOffset(1000 * (agent_s - (sent + received) / 2), 1000 * (received - sent))


def connect(address: tuple[str, int], key: bytes, spec: CrowdSpec) -> tuple[Connection, ClockOffset]:
    """Open a run's connection to an agent, measure its clock, hand it the spec."""
    connection = Client(address, authkey=key)
    samples = []
    for _ in range(CLOCK_PROBES):
        sent = time.time()
        connection.send((CLOCK, sent))
        agent_s = connection.recv()
        samples.append((sent, agent_s, time.time()))
    connection.send(spec)
    return connection, estimate_offset(samples)


def shifted(counts: dict[int, int], offset_ms: float) -> dict[int, int]:
    """Latency counts measured on a clock `offset_ms` ahead of this machine's, on this machine's clock."""
    fixed: Counter[int] = Counter()
    for latency_ms, count in counts.items():
        fixed[max(0, int(latency_ms - offset_ms))] += count
    return dict(fixed)


def serve(address: tuple[str, int], key: bytes) -> None:
    """Accept runs one after another; each gets a forked crowd process on its connection."""
    context = multiprocessing.get_context("fork")  # no event loop runs here to be copied
    with Listener(address, authkey=key) as listener:
        print(f"livecore-loadtest agent listening on {address[0]}:{listener.address[1]}", file=sys.stderr, flush=True)
        while True:
            try:
                connection = listener.accept()
            except (OSError, EOFError, multiprocessing.AuthenticationError) as exc:
                print(f"refused a connection: {exc}", file=sys.stderr, flush=True)
                continue
            spec = _answer_clock(connection)
            if spec is None:
                connection.close()
                continue
            print(f"run: {len(spec.seats)} viewers", file=sys.stderr, flush=True)
            context.Process(target=run_crowd, args=(connection, spec), daemon=False).start()
            connection.close()


def _answer_clock(connection: Connection) -> CrowdSpec | None:
    while True:
        try:
            message: Any = connection.recv()
        except (EOFError, OSError):
            return None
        if isinstance(message, tuple) and message and message[0] == CLOCK:
            connection.send(time.time())
        elif isinstance(message, CrowdSpec):
            return message
        else:
            return None


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "agent", help="serve viewers for runs started on another machine (run --agent HOST:PORT)",
        description="Wait for runs to connect and hold their share of the viewers. The key (--key or "
        f"${KEY_ENV}) must be the same on both sides; it authenticates every message.",
    )
    parser.add_argument("--listen", type=parse_address, default=("0.0.0.0", 7788), metavar="HOST:PORT",
                        help="where to listen (default 0.0.0.0:7788)")
    parser.add_argument("--key", help=f"the shared key (default: ${KEY_ENV})")
    parser.set_defaults(run=run_agent)


def agent_key(given: str | None) -> bytes:
    key = given or os.environ.get(KEY_ENV, "")
    if not key:
        raise SystemExit(f"livecore-loadtest: an agent key is needed: --key or ${KEY_ENV}")
    return key.encode()


def run_agent(args: argparse.Namespace) -> int:
    serve(args.listen, agent_key(args.key))
    return 0
