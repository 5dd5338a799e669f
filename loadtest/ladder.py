"""A ladder of loads run in turn against livecore and the peers, and where each server fell over."""

from __future__ import annotations

import html
from typing import Any

from loadtest.scenario import ScenarioError

FELL_OVER_LOSS = 0.01  # a step a server loses more than this share of events at is where it fell over
FELL_OVER_P99_MS = 1000  # or where its p99 delivery latency is above this


def parse_ladder(text: str) -> list[tuple[int, float]]:
    """`500x50,2000x100` as [(500, 50.0), (2000, 100.0)]: viewers x chat messages per room per second."""
    steps = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        viewers, sep, rate = part.partition("x")
        if not sep or not viewers.isdigit():
            raise ScenarioError(f"--ladder expects VIEWERSxRATE steps, got {part!r}")
        try:
            steps.append((int(viewers), float(rate)))
        except ValueError:
            raise ScenarioError(f"--ladder expects VIEWERSxRATE steps, got {part!r}") from None
    return steps


def fell_over(result: dict[str, Any]) -> str:
    """Why a server did not hold a step ('' when it held): loss, latency or refused connections."""
    if "skipped" in result:
        return ""
    reasons = []
    if result["accounting"]["loss"] > FELL_OVER_LOSS:
        reasons.append(f"lost {100 * result['accounting']['loss']:.1f}%")
    p99 = result["latency"]["summary"]["all"]["p99_ms"]
    if p99 is not None and p99 > FELL_OVER_P99_MS:
        reasons.append(f"p99 {p99:,} ms")
    seen = result["viewers"]
    if seen["connect_failed"] > FELL_OVER_LOSS * result["scenario"]["viewers"]:
        reasons.append(f"{seen['connect_failed']:,} viewers could not connect")
    return ", ".join(reasons)


def first_falls(ladder: list[dict[str, Any]]) -> dict[str, str | None]:
    """Per server, the first step it did not hold (None: it held them all)."""
    falls: dict[str, str | None] = {}
    for step in ladder:
        for target, reason in step["fell_over"].items():
            falls.setdefault(target, None)
            if reason and falls[target] is None:
                falls[target] = f"{step['step']} ({reason})"
    return falls


def ladder_rows(ladder: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """Per server, per step: delivered per server CPU-second, p50/p99 and loss."""
    targets = list(dict.fromkeys(r["target"] for step in ladder for r in step["ran"]))
    rows = []
    for target in targets:
        cells = []
        for step in ladder:
            found = next((r for r in step["ran"] if r["target"] == target), None)
            if found is None:
                cells.append("-")
                continue
            lat = found["latency"]["summary"]["all"]
            cells.append(f"{found['delivered_per_server_cpu_s'] or 0:,.0f}/CPU-s, p50/p99 {lat['p50_ms']}/"
                         f"{lat['p99_ms']} ms, loss {100 * found['accounting']['loss']:.2f}%")
        rows.append((target, cells))
    return rows


def ladder_text(ladder: list[dict[str, Any]], falls: dict[str, str | None]) -> str:
    lines = ["== side by side: delivered events per server CPU-second, latency, loss; where each fell over"]
    for target, cells in ladder_rows(ladder):
        steps = (f"{step['step']}: {cell}" for step, cell in zip(ladder, cells, strict=True))
        lines.append(f"{target}: " + " | ".join(steps))
        lines.append(f"{target}: fell over at {falls.get(target) or 'none of these steps'}")
    return "\n".join(lines)


def ladder_html(ladder: list[dict[str, Any]], falls: dict[str, str | None]) -> str:
    head = "".join(f"<th>{html.escape(step['step'])}</th>" for step in ladder)
    body = "".join(
        f"<tr><th>{html.escape(target)}</th>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
        + f"<td>{html.escape(falls.get(target) or 'held every step')}</td></tr>"
        for target, cells in ladder_rows(ladder)
    )
    return (f"<h2>Side by side</h2><table><tr><th></th>{head}<th>fell over at</th></tr>{body}</table>"
            f"<p>Fell over: loss above {100 * FELL_OVER_LOSS:g}%, p99 above {FELL_OVER_P99_MS:,} ms, or more than "
            f"{100 * FELL_OVER_LOSS:g}% of viewers unable to connect.</p>")
