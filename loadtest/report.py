"""One run's figures, merged from the workers' reports, and the table and JSON they are printed as."""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from loadtest.cpumeter import MACHINE
from loadtest.histogram import LatencyHistogram, LatencySummary, merged
from loadtest.viewer import CHAT, PROBE
from loadtest.worker import WorkerReport

LATENCY_P99_MS_MAX = 250  # the target for p99 delivery latency
CPU_RATIO_MIN = 5.0  # the target: delivered events per server CPU-second against the naive baseline
OTHER_LOAD_SHARE_MAX = 0.10  # share of the machine other processes may take before a run is flagged
VIEWER_BUSY_SHARE_MAX = 0.85  # a viewer process busier than this may be what limits delivery
CORES = os.cpu_count() or 1


@dataclass(frozen=True)
class Workload:
    viewers: int
    rate_per_s: float
    duration_s: float
    must_every: int  # every must_every-th publish is a must-deliver probe; 0 for none
    display_per_s: float | None  # the room's chat display rate (the server samples above it); None: unsampled


@dataclass
class RunResult:
    target: str
    workload: Workload
    connected: int
    connect_failed: int
    failure_reasons: dict[str, int]
    chat_published: int
    probes_published: int
    publish_lag_max_s: float
    publisher_errors: dict[str, int]
    publisher_error_details: dict[str, str]
    window_s: float  # from the start of publishing to the last chat or probe received
    publish_s: float
    chat_delivered: int
    probes_delivered: int
    viewers_open: int
    viewers_missing_probes: int
    other_events: dict[str, int]
    frames: int
    payload_bytes: int
    snapshots: int  # viewers whose first frame held a snapshot
    latency_publish: LatencySummary
    latency_server: LatencySummary
    latency_read: LatencySummary
    latency_must: LatencySummary
    latency_join: LatencySummary
    cpu_s: dict[str, float]
    seq_missing: int
    seq_repeated: int
    undecodable: int
    close_codes: dict[int, int]
    viewer_workers: int
    server_errors: dict[str, int] = field(default_factory=dict)  # error lines in the server's log, by kind

    @property
    def chat_expected(self) -> int:
        return self.connected * self.chat_published

    @property
    def probes_expected(self) -> int:
        return self.connected * self.probes_published

    @property
    def chat_sampled(self) -> bool:
        """Whether the room should have sampled chat down to its display rate in this run."""
        display = self.workload.display_per_s
        return display is not None and self.chat_published > display * self.publish_s * 1.001

    @property
    def delivered(self) -> int:
        return self.chat_delivered + self.probes_delivered

    @property
    def delivered_per_s(self) -> float:
        return self.delivered / self.window_s if self.window_s > 0 else 0.0

    @property
    def server_cpu_s(self) -> float:
        return self.cpu_s.get("server", 0.0)

    @property
    def other_cpu_s(self) -> float:
        """CPU spent in the window by processes outside the benchmark: noise in the figures."""
        ours = sum(seconds for category, seconds in self.cpu_s.items() if category != MACHINE)
        return max(0.0, self.cpu_s.get(MACHINE, 0.0) - ours)

    @property
    def backing_cpu_s(self) -> float:
        return self.cpu_s.get("valkey", 0.0) + self.cpu_s.get("postgres", 0.0)

    def delivered_per_cpu_s(self, with_backing: bool = False) -> float:
        cpu_s = self.server_cpu_s + (self.backing_cpu_s if with_backing else 0.0)
        return self.delivered / cpu_s if cpu_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["close_codes"] = {str(code): count for code, count in self.close_codes.items()}
        data.update(
            chat_expected=self.chat_expected,
            probes_expected=self.probes_expected,
            chat_sampled=self.chat_sampled,
            delivered=self.delivered,
            delivered_per_s=round(self.delivered_per_s, 1),
            delivered_per_server_cpu_s=round(self.delivered_per_cpu_s(), 1),
            delivered_per_server_and_backing_cpu_s=round(self.delivered_per_cpu_s(with_backing=True), 1),
        )
        return data


def merge_reports(reports: Sequence[WorkerReport]) -> dict[str, Any]:
    """The workers' reports as one set of totals (the viewer-side fields of a RunResult)."""
    types: Counter[str] = Counter()
    probes_per_viewer: Counter[int] = Counter()
    failures: Counter[str] = Counter()
    closes: Counter[int] = Counter()
    for report in reports:
        types.update(report.types)
        probes_per_viewer.update(report.probes_per_viewer)
        failures.update(report.failure_reasons)
        closes.update(report.close_codes)
    return {
        "connected": sum(r.connected for r in reports),
        "connect_failed": sum(r.failed for r in reports),
        "failure_reasons": dict(failures),
        "chat_delivered": types.pop(CHAT, 0),
        "probes_delivered": types.pop(PROBE, 0),
        "other_events": dict(types),
        "frames": sum(r.frames for r in reports),
        "payload_bytes": sum(r.payload_bytes for r in reports),
        "snapshots": sum(r.snapshots for r in reports),
        "viewers_open": sum(probes_per_viewer.values()),
        "probes_per_viewer": probes_per_viewer,
        "latency_publish": merged(LatencyHistogram(r.latency_publish) for r in reports).summary(),
        "latency_server": merged(LatencyHistogram(r.latency_server) for r in reports).summary(),
        "latency_read": merged(LatencyHistogram(r.latency_read) for r in reports).summary(),
        "latency_must": merged(LatencyHistogram(r.latency_must) for r in reports).summary(),
        "latency_join": merged(LatencyHistogram(r.latency_join) for r in reports).summary(),
        "seq_missing": sum(r.seq_missing for r in reports),
        "seq_repeated": sum(r.seq_repeated for r in reports),
        "undecodable": sum(r.undecodable for r in reports),
        "close_codes": dict(closes),
    }


def viewers_missing(probes_per_viewer: Counter[int], probes_published: int) -> int:
    """Open viewers that received fewer probes than were published."""
    return sum(count for received, count in probes_per_viewer.items() if received < probes_published)


def ratio(ours: RunResult, naive: RunResult | None, with_backing: bool = False) -> float | None:
    """livecore's delivered events per CPU-second over the naive baseline's."""
    if naive is None or naive.delivered_per_cpu_s(with_backing) == 0:
        return None
    return ours.delivered_per_cpu_s(with_backing) / naive.delivered_per_cpu_s(with_backing)


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _sampled_note(result: RunResult) -> str:
    return f" (sampled to {result.workload.display_per_s:g}/s)" if result.chat_sampled else ""


def _pair(first: float, second: float) -> str:
    return f"{_count(first)} / {_count(second)}"


def _share(part: int, whole: int) -> str:
    return f"{_count(part)} / {_count(whole)} ({100 * part / whole:.1f}%)" if whole else f"{_count(part)} / 0"


def _latency(summary: LatencySummary) -> str:
    if not summary.samples:
        return "-"
    return f"{summary.p50_ms} / {summary.p99_ms} / {summary.max_ms}  (n={_count(summary.samples)})"


def _rows(result: RunResult) -> list[tuple[str, str]]:
    cpu = result.cpu_s
    viewer_seconds = result.connected * result.window_s
    chat_per_viewer_s = result.chat_delivered / viewer_seconds if viewer_seconds else 0.0
    return [
        ("viewers connected", _pair(result.connected, result.workload.viewers)),
        ("  whose first frame was a snapshot", _count(result.snapshots)),
        ("  join (upgrade) time p50/p99/max ms", _latency(result.latency_join)),
        ("rate in (events/s)", f"{result.workload.rate_per_s:g}"),
        ("published chat / must-deliver", _pair(result.chat_published, result.probes_published)),
        ("publisher lag max (ms)", f"{1000 * result.publish_lag_max_s:.1f}"),
        ("window (s)", f"{result.window_s:.2f}"),
        ("chat delivered / expected", _share(result.chat_delivered, result.chat_expected)),
        ("chat per viewer per s", f"{chat_per_viewer_s:.1f}" + _sampled_note(result)),
        ("must-deliver delivered / expected", _share(result.probes_delivered, result.probes_expected)),
        ("viewers missing a must-deliver", _count(result.viewers_missing_probes)),
        ("delivered events/s", _count(result.delivered_per_s)),
        ("frames / MB received", f"{_count(result.frames)} / {result.payload_bytes / 1e6:,.1f}"),
        ("chat latency p50/p99/max ms", _latency(result.latency_publish)),
        ("  from server ts", _latency(result.latency_server)),
        ("  to read by the viewer process", _latency(result.latency_read)),
        ("must-deliver latency (ts) ms", _latency(result.latency_must)),
        ("server CPU s", f"{result.server_cpu_s:.2f}"),
        ("valkey / postgres CPU s", f"{cpu.get('valkey', 0.0):.2f} / {cpu.get('postgres', 0.0):.2f}"),
        ("viewers / publisher CPU s", f"{cpu.get('clients', 0.0):.2f} / {cpu.get('publisher', 0.0):.2f}"),
        ("other processes' CPU s", f"{result.other_cpu_s:.2f} (machine busy {cpu.get(MACHINE, 0.0):.2f})"),
        ("delivered per server CPU-s", _count(result.delivered_per_cpu_s())),
        ("  incl. valkey + postgres", _count(result.delivered_per_cpu_s(with_backing=True))),
        ("seq missing / repeated", f"{_count(result.seq_missing)} / {_count(result.seq_repeated)}"),
        ("closes (code: n)", ", ".join(f"{c}: {n}" for c, n in sorted(result.close_codes.items())) or "-"),
        ("publisher errors", ", ".join(f"{k}: {n}" for k, n in result.publisher_errors.items()) or "-"),
        ("server log errors", _count(sum(result.server_errors.values()))),
    ]


def table(title: str, results: Sequence[RunResult]) -> str:
    """The results side by side, one column per server, plus the livecore / naive ratio."""
    columns = [[value for _, value in _rows(result)] for result in results]
    labels = [label for label, _ in _rows(results[0])]
    by_target = {result.target: result for result in results}
    if "livecore" in by_target and "naive" in by_target:
        for with_backing in (False, True):
            labels.append("livecore / naive per CPU-s" + ("  (incl. backing)" if with_backing else ""))
            value = ratio(by_target["livecore"], by_target["naive"], with_backing)
            text = f"{value:.1f}x" if value is not None else "-"
            for column in columns:
                column.append(text if column is columns[0] else "")
    label_width = max(len(label) for label in labels)
    widths = [max(len(results[i].target), *(len(v) for v in column)) for i, column in enumerate(columns)]
    header = [result.target.ljust(width) for result, width in zip(results, widths, strict=True)]
    lines = [title, "  ".join([" " * label_width, *header]).rstrip()]
    for row, label in enumerate(labels):
        cells = [column[row].ljust(width) for column, width in zip(columns, widths, strict=True)]
        lines.append("  ".join([label.ljust(label_width), *cells]).rstrip())
    return "\n".join(lines)


def checks(ours: RunResult, naive: RunResult | None) -> list[tuple[str, bool]]:
    """The issue's targets for this run, each as (statement, met)."""
    found: list[tuple[str, bool]] = [
        ("every viewer connected", ours.connected == ours.workload.viewers),
        ("every viewer's first frame held a snapshot", ours.snapshots == ours.connected),
    ]
    if not ours.chat_sampled:
        found.append(("every chat event delivered", ours.chat_delivered == ours.chat_expected))
    elif ours.connected and ours.workload.display_per_s:
        display = ours.workload.display_per_s
        per_viewer = ours.chat_delivered / ours.connected
        # At least 90% of the rate while publishing; at most the rate over the window (a lagging server
        # samples until it catches up) plus the one second of burst a full bucket holds.
        low, high = 0.9 * display * ours.publish_s, 1.02 * display * (ours.window_s + 1)
        found.append((f"chat sampled to the room's display rate ({display:g}/s)", low <= per_viewer <= high))
    if ours.probes_published:
        found.append((
            "every must-deliver event delivered to every viewer",
            ours.probes_delivered == ours.probes_expected and ours.viewers_missing_probes == 0,
        ))
    p99 = ours.latency_publish.p99_ms
    found.append((f"chat p99 under {LATENCY_P99_MS_MAX} ms", p99 is not None and p99 < LATENCY_P99_MS_MAX))
    if ours.probes_published:
        must_p99 = ours.latency_must.p99_ms
        found.append((
            f"must-deliver p99 under {LATENCY_P99_MS_MAX} ms",
            must_p99 is not None and must_p99 < LATENCY_P99_MS_MAX,
        ))
    value = ratio(ours, naive)
    if value is not None:
        statement = f"at least {CPU_RATIO_MIN:g}x the naive baseline's delivered events per server CPU-s"
        found.append((statement, value >= CPU_RATIO_MIN))
    return found


def load_warnings(results: Sequence[RunResult]) -> list[str]:
    """What made a run's latency or throughput suspect: other load on the machine, or saturated viewers."""
    warnings = []
    for result in results:
        if result.window_s <= 0:
            continue
        other_share = result.other_cpu_s / (result.window_s * CORES)
        if other_share > OTHER_LOAD_SHARE_MAX:
            warnings.append(
                f"warning: during the {result.target} window other processes used {result.other_cpu_s:.1f} "
                f"CPU-s ({100 * other_share:.0f}% of the machine's {CORES} cores); its latency and "
                "throughput figures are depressed by that load"
            )
        viewer_share = result.cpu_s.get("clients", 0.0) / (result.window_s * max(1, result.viewer_workers))
        if viewer_share > VIEWER_BUSY_SHARE_MAX:
            warnings.append(
                f"warning: the {result.target} viewer processes were {100 * viewer_share:.0f}% busy: they "
                "may be what limited delivery and latency (try more --workers, or fewer viewers)"
            )
    return warnings


def server_error_lines(results: Sequence[RunResult], kinds_max: int = 3) -> list[str]:
    """The commonest errors each server logged, to read beside the table."""
    lines = []
    for result in results:
        commonest = sorted(result.server_errors.items(), key=lambda item: -item[1])[:kinds_max]
        lines += [f"{result.target} logged {count:,} x {kind[:200]}" for kind, count in commonest]
    return lines


def checks_text(found: list[tuple[str, bool]]) -> str:
    return "\n".join(f"  [{'met' if met else 'MISSED'}] {statement}" for statement, met in found)
