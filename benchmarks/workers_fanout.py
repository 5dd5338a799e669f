"""Fan-out on one node with `--workers 2` against one worker, in the same run on the same machine: the same
`livecore-loadtest fanout` workload against a node started with each worker count (one after the other, each on
fresh embedded servers), printed side by side with the ratio to the one-worker run.

Server CPU is the whole process tree of `livecore serve` (supervisor, workers, fulfilment simulator); Valkey and
PostgreSQL are shown beside it, as the load tester reports them.

Run: `.venv/bin/python benchmarks/workers_fanout.py --viewers 1000 --rate 50 --duration 10`
(any other `livecore-loadtest fanout` flag is passed on; `--node-workers 1 2 4` picks the worker counts).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

LOADTEST = Path(sys.executable).parent / "livecore-loadtest"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--node-workers", type=int, nargs="+", default=[1, 2],
                        help="the node's worker counts to compare, the first being the baseline (default: 1 2)")
    args, fanout_args = parser.parse_known_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="workers-fanout-") as directory:
        for workers in args.node_workers:
            out = Path(directory) / f"workers-{workers}.json"
            command = [str(LOADTEST), "fanout", "--skip-baseline", "--server-setting", f"workers={workers}",
                       "--json", str(out), *fanout_args]
            print(f"$ {' '.join(command)}", flush=True)
            subprocess.run(command, check=True)
            runs.append((workers, _livecore_result(out)))
    print(table(runs))
    return 0


def _livecore_result(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text())
    return next(result for result in document["results"] if result["target"] == "livecore")


def table(runs: list[tuple[int, dict[str, Any]]]) -> str:
    """One column per worker count: delivery, CPU, latency, and the ratio to the first (the baseline)."""
    base = runs[0][1]

    def ratio(result: dict[str, Any], key: str) -> str:
        return f"{result[key] / base[key]:.2f}x" if base[key] else "-"

    rows = [
        ("node workers", [str(workers) for workers, _ in runs]),
        ("delivered events", [f"{r['delivered']:,}" for _, r in runs]),
        ("delivered per s", [f"{r['delivered_per_s']:,.0f}" for _, r in runs]),
        ("server CPU s", [f"{r['cpu_s'].get('server', 0.0):.2f}" for _, r in runs]),
        ("delivered per server CPU-s", [f"{r['delivered_per_server_cpu_s']:,.0f}" for _, r in runs]),
        ("  ratio to the first", [ratio(r, "delivered_per_server_cpu_s") for _, r in runs]),
        ("chat latency p50 ms", [str(r["latency_publish"]["p50_ms"]) for _, r in runs]),
        ("chat latency p99 ms", [str(r["latency_publish"]["p99_ms"]) for _, r in runs]),
        ("machine busy CPU s", [f"{r['cpu_s'].get('machine', 0.0):.2f}" for _, r in runs]),
    ]
    width = max(len(name) for name, _ in rows)
    cell = max(len(value) for _, values in rows for value in values) + 2
    return "\n".join(f"{name:<{width}}" + "".join(f"{value:>{cell}}" for value in values) for name, values in rows)


if __name__ == "__main__":
    sys.exit(main())
