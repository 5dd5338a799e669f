"""What each campaign has spent, as the pacer reads it: read from PostgreSQL's hourly roll-ups when a refresh finds
them moved, plus what this node charged since (so its own decisions see their spend at once)."""

from __future__ import annotations

from dataclasses import dataclass

from ads.pacing import DAY_MS, HOUR_MS, Spend


@dataclass
class _Tally:
    total: int = 0
    day_start_ms: int = 0
    today: int = 0
    hour_start_ms: int = 0
    this_hour: int = 0


class SpendView:
    def __init__(self) -> None:
        self._tallies: dict[int, _Tally] = {}

    def replace(self, now_ms: int, figures: dict[int, tuple[int, int, int]]) -> None:
        """Start again from figures read at `now_ms`: (total, today, this hour) in millicents per campaign; a
        campaign not among them has spent nothing."""
        tallies, self._tallies = self._tallies, {}
        for c in figures:
            self._tallies[c] = tallies.get(c) or _Tally()
        self.update(now_ms, figures)

    def update(self, now_ms: int, figures: dict[int, tuple[int, int, int]]) -> None:
        """The figures read at `now_ms` for these campaigns; the others keep theirs."""
        day_start, hour_start = now_ms - now_ms % DAY_MS, now_ms - now_ms % HOUR_MS
        for c, (total, today, this_hour) in figures.items():  # a tally is updated in place: a refresh allocates none
            tally = self._tallies.get(c)
            if tally is None:
                tally = self._tallies[c] = _Tally()
            tally.total, tally.day_start_ms, tally.today = total, day_start, today
            tally.hour_start_ms, tally.this_hour = hour_start, this_hour

    def add(self, campaign_id: int, at_ms: int, millicents: int) -> None:
        tally = self._tallies.setdefault(campaign_id, _Tally())
        self._roll(tally, at_ms)
        tally.total += millicents
        tally.today += millicents
        tally.this_hour += millicents

    def of(self, campaign_id: int, now_ms: int) -> Spend:
        tally = self._tallies.setdefault(campaign_id, _Tally())
        self._roll(tally, now_ms)
        return Spend(tally.total, tally.today, tally.this_hour)

    @staticmethod
    def _roll(tally: _Tally, now_ms: int) -> None:
        if now_ms - now_ms % DAY_MS != tally.day_start_ms:
            tally.day_start_ms, tally.today = now_ms - now_ms % DAY_MS, 0
        if now_ms - now_ms % HOUR_MS != tally.hour_start_ms:
            tally.hour_start_ms, tally.this_hour = now_ms - now_ms % HOUR_MS, 0
