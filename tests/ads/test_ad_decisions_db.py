"""The ad-decision benchmark's database mode (benchmarks/ad_decisions_db.py), run for a second and a half a phase at
a low rate: it starts its own PostgreSQL and Valkey, makes campaigns as the product does, runs the node's refresh,
spend posting and event path beside the decisions, prints its figures and finds the books in order afterwards."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "ad_decisions_db.py"
RUN_S_MAX = 180  # a loaded machine: initdb, migrations and setup take most of it


async def test_the_database_mode_prints_its_figures_and_keeps_the_books() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(BENCHMARK), "--rate", "40", "--seconds", "1.5", "--campaigns", "12", "--viewers", "30",
        "--refresh-ms", "200", "--spend-post-ms", "300", "--click-percent", "20",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), RUN_S_MAX)
    text = output.decode()
    assert process.returncode == 0, text
    assert "invariants: all hold" in text, text
    assert re.search(r"campaigns 12 \(ad groups 36\) made .* 12 campaigns running in memory", text), text
    baseline, rest = text.split("\n== baseline")[1].split("\n== refresh:")
    refresh, live = rest.split("\n== live:")
    assert all("60 decisions" in phase for phase in (baseline, refresh, live)), text
    assert "refreshes" not in baseline and "event batches" not in baseline, text
    assert re.search(r"refreshes reading what changed: [1-9]", refresh) and "event batches" not in refresh, text
    refreshes = re.search(r"refreshes reading what changed: (\d+), .* rows read median (\d+)", live)
    assert refreshes and int(refreshes[1]) >= 2 and int(refreshes[2]) > 0, text
    assert re.search(r"spend postings: [1-9]", live), text
    batches = re.search(r"event batches: (\d+) .* of (\d+) events", live)
    assert batches and int(batches[1]) > 0, text
    assert re.search(r"CPU seconds: PostgreSQL \d+\.\d\d", live), text
    served = re.search(r"after the run: (\d+) impressions reported in the live phase, (\d+) events sent", text)
    assert served and int(served[1]) > 0 and int(served[2]) >= int(served[1]), text  # every impression came back
    assert len(re.findall(r"latency from due: p50 \d+\.\d\dx", text)) == 2, text  # refresh, live against baseline
    assert re.search(r"ad_group_counts \d+ inserted, [1-9]\d* updated", text), text  # the events moved the counts
