"""Latency distributions as whole-millisecond counts: bounded in size, exact to 1 ms, and mergeable across
worker processes, so no worker has to keep millions of samples.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


class LatencyHistogram:
    """Latencies counted per whole millisecond (rounded down); negative readings count as 0."""

    def __init__(self, counts: Mapping[int, int] | None = None) -> None:
        self.counts: Counter[int] = Counter(counts or {})

    def add_ms(self, latency_ms: float) -> None:
        self.counts[int(latency_ms) if latency_ms > 0 else 0] += 1

    def merge(self, other: LatencyHistogram) -> None:
        self.counts.update(other.counts)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def percentile(self, fraction: float) -> int | None:
        """The smallest whole-ms latency at or below which `fraction` of the samples lie; None when empty."""
        return percentile(self.counts, fraction)

    def summary(self) -> LatencySummary:
        return LatencySummary(
            samples=self.total,
            p50_ms=self.percentile(0.50),
            p99_ms=self.percentile(0.99),
            max_ms=max(self.counts) if self.counts else None,
        )


@dataclass(frozen=True)
class LatencySummary:
    samples: int
    p50_ms: int | None
    p99_ms: int | None
    max_ms: int | None


def percentile(counts: Mapping[int, int], fraction: float) -> int | None:
    """Nearest-rank percentile of a value -> count mapping."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must be within [0, 1], got {fraction}")
    total = sum(counts.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(fraction * total - 1e-9))  # 0.99 * 100 is 99.00000000000001 in floats
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return value
    return max(counts)


def merged(histograms: Iterable[LatencyHistogram]) -> LatencyHistogram:
    result = LatencyHistogram()
    for histogram in histograms:
        result.merge(histogram)
    return result
