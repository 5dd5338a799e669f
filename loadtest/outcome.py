"""A run's figures from the workers' reports and the rooms' observers, and the SLO verdict on them.

Every event a node sent to a room is accounted for per viewer: delivered, or lost (the viewer stayed long
enough to be owed it and never got it). Events published but sampled out by the node (chat above the room's
display rate) are counted apart, as `sampled_out`, since no viewer was owed them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from loadtest.audience import CLASSES, MUST
from loadtest.crowd import CrowdReport
from loadtest.histogram import LatencyHistogram, merged
from loadtest.observer import Observer
from loadtest.scenario import SLO_KEYS
from loadtest.traffic import TrafficCounts

SLOW_CONSUMER_CLOSE = 4008
MUST_CLASSES = ("gift", "bid", MUST)


def accounting(reports: Sequence[CrowdReport], observers: Sequence[Observer]) -> dict[str, Any]:
    """Delivered, expected and lost per class over every viewer, and how many viewers lost anything."""
    by_place = {(o.room, o.node): o for o in observers}
    delivered: Counter[str] = Counter()
    expected: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    excess: Counter[str] = Counter()
    short_viewers = 0
    for report in reports:
        for record in report.records:
            owed = by_place[(record.room, record.node)].expected(record.start_seq, record.end_seq)
            short = False
            for klass in CLASSES:
                got = record.delivered.get(klass, 0)
                delivered[klass] += got
                expected[klass] += owed[klass]
                lost[klass] += max(0, owed[klass] - got)
                excess[klass] += max(0, got - owed[klass])
                short = short or got < owed[klass]
            short_viewers += short
    total_expected = sum(expected.values())
    return {
        "delivered": dict(delivered), "expected": dict(expected), "lost": dict(lost),
        "unexplained": dict(+excess),  # received beyond what the observer saw sent: should be empty
        "loss": sum(lost.values()) / total_expected if total_expected else 0.0,
        "viewers_short": short_viewers,
        "viewers": sum(len(r.records) for r in reports),
    }


KIND_CLASS = {"chat": "chat", "like": "like", "gift": "gift", "bid": "bid", "must": MUST}


def add_unrelayed(
    counts: dict[str, Any], sent: dict[str, int], observers: Sequence[Observer], viewers_per_room: dict[int, int],
    rooms: int,
) -> None:
    """For a server that samples nothing (the peers), what it was sent but never fanned out is lost to every
    viewer of the room: added to `counts` as expected and lost, and named `never_relayed`."""
    never: Counter[str] = Counter()
    for observer in observers:
        if observer.node != 0:
            continue
        for kind, klass in KIND_CLASS.items():
            per_room = sent.get(kind, 0) // rooms
            missing = max(0, per_room - len(observer.seqs[klass]))
            never[klass] += missing * viewers_per_room.get(observer.room, 0)
    for klass, lost in never.items():
        counts["expected"][klass] = counts["expected"].get(klass, 0) + lost
        counts["lost"][klass] = counts["lost"].get(klass, 0) + lost
    counts["never_relayed"] = dict(+never)
    total_expected = sum(counts["expected"].values())
    counts["loss"] = sum(counts["lost"].values()) / total_expected if total_expected else 0.0


def latency(reports: Sequence[CrowdReport]) -> dict[str, Any]:
    per_class = {
        klass: merged(LatencyHistogram(r.tally.latency[klass].counts) for r in reports) for klass in CLASSES
    }
    must = merged(per_class[klass] for klass in MUST_CLASSES)
    everything = merged(per_class.values())
    found = {klass: asdict(h.summary()) for klass, h in per_class.items() if h.total}
    found["must_deliver"] = asdict(must.summary())
    found["all"] = asdict(everything.summary())
    return {"summary": found, "histograms": {k: dict(h.counts) for k, h in per_class.items() if h.total}}


def timeline(reports: Sequence[CrowdReport], start_s: float) -> list[dict[str, Any]]:
    """Per wall-clock second from `start_s`: events delivered and their sampled p50/p99."""
    events: Counter[int] = Counter()
    per_second: dict[int, LatencyHistogram] = {}
    for report in reports:
        events.update(report.tally.events_per_s)
        for second, histogram in report.tally.latency_per_s.items():
            per_second.setdefault(second, LatencyHistogram()).merge(histogram)
    rows = []
    for second in sorted(events):
        summary = per_second.get(second, LatencyHistogram()).summary()
        rows.append({"t": second - int(start_s), "delivered": events[second], "p50_ms": summary.p50_ms,
                     "p99_ms": summary.p99_ms})
    return rows


def viewers(reports: Sequence[CrowdReport]) -> dict[str, Any]:
    closes: Counter[int] = Counter()
    failures: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for report in reports:
        closes.update(report.close_codes)
        failures.update(report.failure_reasons)
        errors.update(report.tally.errors)
    resumes = sum(r.resumes for r in reports)
    replayed = sum(r.resumes_replayed for r in reports)
    return {
        "joined": sum(r.joined for r in reports),
        "connect_failed": sum(r.failed for r in reports),
        "failure_reasons": dict(failures),
        "churned": sum(r.churned for r in reports),
        "join_ms": asdict(merged(LatencyHistogram(r.join_ms) for r in reports).summary()),
        "resumes": resumes,
        "resumes_replayed": replayed,
        "resumes_reset": sum(r.tally.resets for r in reports),
        # resumed but nothing came before the run ended, so neither a replay nor a reset was seen
        "resumes_unanswered": resumes - replayed - sum(r.tally.resets for r in reports),
        "resume_ms": asdict(merged(LatencyHistogram(r.resume_ms) for r in reports).summary()),
        "server_closes": {str(code): count for code, count in closes.items()},
        "slow_consumer_closes": closes.get(SLOW_CONSUMER_CLOSE, 0),
        "error_events": dict(errors),
        "duplicates": sum(r.tally.duplicates for r in reports),
        "out_of_order": sum(r.tally.out_of_order for r in reports),
        "undecodable": sum(r.tally.undecodable for r in reports),
        "frames": sum(r.tally.frames for r in reports),
        "read_behind": sum(r.tally.read_behind for r in reports),
        "payload_bytes": sum(r.tally.payload_bytes for r in reports),
    }


def senders(counts: TrafficCounts, observers: Sequence[Observer]) -> dict[str, Any]:
    node_sent: Counter[str] = Counter()
    for observer in observers:
        if observer.node == 0:
            node_sent.update({klass: len(seqs) for klass, seqs in observer.seqs.items()})
    return {
        "sent": dict(counts.sent),
        "room_events": dict(node_sent),  # what the rooms made of it, seen on the first node
        "errors": dict(counts.errors),
        "error_details": dict(counts.error_details),
        "gift_commit_ms": asdict(counts.commit_ms.summary()),
        "bid_commit_ms": asdict(counts.bid_commit_ms.summary()),
        "lag_max_ms": round(1000 * counts.lag_max_s, 1),
    }


def slo_verdict(result: dict[str, Any], slo: dict[str, float]) -> list[dict[str, Any]]:
    """Each SLO with the measured value and whether it was met."""
    lat = result["latency"]["summary"]
    classes = [s for k, s in lat.items() if k not in ("all", "must_deliver") and s["samples"]]
    worst = lambda key: max((s[key] for s in classes if s[key] is not None), default=None)  # noqa: E731
    seen = result["viewers"]
    measured: dict[str, float | None] = {
        "p99_ms": worst("p99_ms"),
        "p50_ms": worst("p50_ms"),
        "must_p99_ms": lat["must_deliver"]["p99_ms"],
        "loss": result["accounting"]["loss"],
        "connect_failed": seen["connect_failed"],
        "resume_failed": seen["resumes_reset"] / seen["resumes"] if seen["resumes"] else 0.0,
        "errors": sum(seen["error_events"].values()) + sum(seen["server_closes"].values()),
    }
    verdict = []
    for key, limit in slo.items():
        value = measured[key]
        verdict.append({"slo": key, "limit": limit, "measured": value, "meaning": SLO_KEYS[key],
                        "met": value is not None and value <= limit})
    return verdict
