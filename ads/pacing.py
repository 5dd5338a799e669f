"""The pacer: how much of a campaign's budget may be spent by now, so it lasts over its schedule.

Each UTC day a campaign may spend its day budget: the daily budget, or what is left of the lifetime budget if less.
Over the part of the day its schedule covers, the share it may have spent by time x (0..1 of that part) follows its
pacing curve, looked ahead by `lookahead` so there is always something to spend:
- even: x (each hour its equal share); an hour may also spend at most `hour_share_max` times its share (the throttle)
- front_loaded: 1 - (1 - x)^2 (twice the even rate at the start, none at the end); the same hourly throttle
- asap: everything at once, as fast as traffic allows
A slot is offered to the campaign only while it is under both limits, so each overshoots by one price at most
(a price may be larger than a whole lookahead's worth of budget). The lifetime budget is also a hard cap where events
are charged (events.py): nothing is ever charged beyond it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Pacing = Literal["even", "front_loaded", "asap"]
DAY_MS = 24 * 3600 * 1000
HOUR_MS = 3600 * 1000


@dataclass(frozen=True)
class Schedule:
    starts_ms: int
    ends_ms: int
    budget_daily_millicents: int
    budget_lifetime_millicents: int
    pacing: Pacing


@dataclass(frozen=True)
class Spend:
    """A campaign's spend as the pacer needs it, in millicents."""

    total: int
    today: int
    this_hour: int


@dataclass(frozen=True)
class PacingRule:
    lookahead: float  # share of the day's window the target runs ahead of the clock
    hour_share_max: float  # an hour's spend at most this multiple of its share (even, front_loaded)


def curve(pacing: Pacing, x: float) -> float:
    x = min(1.0, max(0.0, x))
    if pacing == "even":
        return x
    if pacing == "front_loaded":
        return 1 - (1 - x) ** 2
    return 1.0


def day_window(schedule: Schedule, now_ms: int) -> tuple[int, int] | None:
    """The part of today (UTC) the schedule covers, or None when it does not run now."""
    day_start = now_ms - now_ms % DAY_MS
    start, end = max(day_start, schedule.starts_ms), min(day_start + DAY_MS, schedule.ends_ms)
    return (start, end) if start <= now_ms < end else None


def day_budget(schedule: Schedule, spend: Spend) -> int:
    spent_before_today = spend.total - spend.today
    return max(0, min(schedule.budget_daily_millicents, schedule.budget_lifetime_millicents - spent_before_today))


def allows(schedule: Schedule, spend: Spend, now_ms: int, rule: PacingRule) -> bool:
    """Whether the campaign may take a slot now."""
    window = day_window(schedule, now_ms)
    if window is None or spend.total >= schedule.budget_lifetime_millicents:
        return False
    budget = day_budget(schedule, spend)
    start, end = window
    span = end - start
    x = (now_ms - start) / span
    if spend.today >= budget * curve(schedule.pacing, x + rule.lookahead):
        return False
    if schedule.pacing == "asap":
        return True
    hour_start = max(start, now_ms - now_ms % HOUR_MS)
    hour_end = min(end, now_ms - now_ms % HOUR_MS + HOUR_MS)
    share = budget * (curve(schedule.pacing, (hour_end - start) / span)
                      - curve(schedule.pacing, (hour_start - start) / span))
    return spend.this_hour < share * rule.hour_share_max
