"""Three nodes on a 3-primary Valkey Cluster against one node on one Valkey: the same `livecore-loadtest run`
workload (viewers dealt over the nodes, chat and must-deliver events in several rooms, so the rooms' keys land on
every shard), printed side by side: delivered events per server CPU-second and delivery latency.

Server CPU is the nodes' own (`process_cpu_seconds_total` from each node's /metrics, as the load tester reads it for
`--target`s); Valkey's and PostgreSQL's are not in it. Every server is started here on throw-away data dirs: one
PostgreSQL shared by both runs, a fresh Valkey (or cluster, primaries only) per run.

Run: `.venv/bin/python benchmarks/cluster_fanout.py --viewers 1200 --rooms 6 --chat-rate 20 --duration 20`
(any other `livecore-loadtest run` flag is passed on).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the cluster the tests start

from valkeycluster import ValkeyCluster

from livecore.embedded import EmbeddedPostgres, EmbeddedValkey, free_port
from loadtest.servers import UNLIMITED

LOADTEST = Path(sys.executable).parent / "livecore-loadtest"
START_S_MAX = 90.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cluster-nodes", type=int, default=3, help="livecore nodes on the cluster (default 3)")
    args, run_args = parser.parse_known_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="cluster-fanout-") as directory:
        root = Path(directory)
        pg = EmbeddedPostgres(root / "postgres")
        database_url = pg.start()
        try:
            valkey = EmbeddedValkey(root / "valkey")
            try:
                with _nodes(root / "single", database_url, valkey.start(), 1) as urls:
                    runs.append(("1 node, 1 Valkey", _run(root / "single.json", urls, run_args)))
            finally:
                valkey.stop()
            cluster = ValkeyCluster(root / "cluster")
            try:
                # no replica to promote: a primary a loaded machine keeps waiting must not be taken for dead
                cluster.start(replicas=0, node_timeout_ms=15_000)
                with _nodes(root / "clustered", database_url, cluster.url, args.cluster_nodes) as urls:
                    runs.append((f"{args.cluster_nodes} nodes, 3-primary cluster",
                                 _run(root / "cluster.json", urls, run_args)))
            finally:
                cluster.stop()
        finally:
            pg.stop()
    print(table(runs))
    return 0


@contextlib.contextmanager
def _nodes(directory: Path, database_url: str, redis_url: str, count: int) -> Iterator[list[str]]:
    """`count` `livecore serve` nodes (one process each) on these servers; their URLs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVECORE_")}
    env.update(LIVECORE_DATABASE_URL=database_url, LIVECORE_REDIS_URL=redis_url, LIVECORE_SEED_DEMO="false",
               LIVECORE_LOG_LEVEL="WARNING", LIVECORE_WORKERS="1",
               # what the load tester gives a node it starts: its few accounts carry the whole crowd
               LIVECORE_CHAT_PER_USER_PER_10S_MAX=UNLIMITED, LIVECORE_LIKE_TAPS_PER_USER_PER_S_MAX=UNLIMITED,
               LIVECORE_CONNECTIONS_PER_USER_MAX=UNLIMITED)
    servers: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for index in range(count):
            port = free_port()
            servers.append(subprocess.Popen([sys.executable, "-m", "livecore", "serve", "--port", str(port),
                                             "--data-dir", str(directory / f"node{index}")], env=env))
            urls.append(f"http://127.0.0.1:{port}")
            _wait_ready(urls[-1], servers[-1])  # one at a time: the first applies the migrations
        yield urls
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)


def _wait_ready(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_S_MAX
    while True:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        assert time.monotonic() < deadline and server.poll() is None, f"the node at {url} did not start"
        time.sleep(0.2)


def _run(out: Path, urls: list[str], run_args: list[str]) -> dict[str, Any]:
    command = [str(LOADTEST), "run", *(f"--target={url}" for url in urls), "--json", str(out), *run_args]
    print(f"$ {' '.join(command)}", flush=True)
    subprocess.run(command, check=True)
    document = json.loads(out.read_text())
    return document["results"][0]


def table(runs: list[tuple[str, dict[str, Any]]]) -> str:
    def lat(result: dict[str, Any], klass: str, key: str) -> str:
        summary = result["latency"]["summary"].get(klass) or {}
        return str(summary.get(key, "-"))

    rows = [
        ("", [name for name, _ in runs]),
        ("viewers joined / failed", [f"{r['viewers']['joined']:,} / {r['viewers']['connect_failed']:,}"
                                     for _, r in runs]),
        ("delivered / expected", [f"{sum(r['accounting']['delivered'].values()):,} / "
                                  f"{sum(r['accounting']['expected'].values()):,}" for _, r in runs]),
        ("delivered events/s", [f"{r['delivered_per_s']:,.0f}" for _, r in runs]),
        ("server CPU s (nodes)", [str(r["server"]["cpu_s"]) for _, r in runs]),
        ("delivered per server CPU-s", [f"{r['delivered_per_server_cpu_s'] or 0:,.0f}" for _, r in runs]),
        ("latency p50 ms (all)", [lat(r, "all", "p50_ms") for _, r in runs]),
        ("latency p99 ms (all)", [lat(r, "all", "p99_ms") for _, r in runs]),
        ("must-deliver p99 ms", [lat(r, "must_deliver", "p99_ms") for _, r in runs]),
        ("join p99 ms", [str(r["viewers"]["join_ms"]["p99_ms"]) for _, r in runs]),
    ]
    width = max(len(name) for name, _ in rows)
    cell = max(len(value) for _, values in rows for value in values) + 2
    return "\n".join(f"{name:<{width}}" + "".join(f"{value:>{cell}}" for value in values) for name, values in rows)


if __name__ == "__main__":
    sys.exit(main())
