"""A creator's audience as aggregates only: followers counted by age band, region and interest, with every group
smaller than the k-anonymity size (`marketplace_group_size_min`) merged into "other" or left out, so a card never
shows a group of fewer than k followers."""

from __future__ import annotations

import datetime as dt

AGE_BANDS = ("13-17", "18-24", "25-34", "35-44", "45-54", "55+")
_BAND_STARTS = (13, 18, 25, 35, 45, 55)
OTHER = "other"
SHARE_DIGITS = 4


def age_band(birth_date: dt.date, today: dt.date) -> str | None:
    """The age band of someone born on `birth_date`; None under 13 (not an account the platform holds)."""
    years = today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))
    band = None
    for name, start in zip(AGE_BANDS, _BAND_STARTS, strict=True):
        if years >= start:
            band = name
    return band


def partition_shares(counts: dict[str, int], total: int, k: int) -> dict[str, float]:
    """Shares of `total` for groups that split the audience (each follower in one group): groups under `k` merged
    into "other", shown only when it reaches `k` too; nothing when the whole audience is under `k`."""
    if total < k:
        return {}
    shown = {name: n for name, n in counts.items() if n >= k and name != OTHER}
    merged = sum(n for name, n in counts.items() if name not in shown)
    if merged >= k:
        shown[OTHER] = merged
    return _shares(shown, total)


def overlapping_shares(counts: dict[str, int], total: int, k: int) -> dict[str, float]:
    """Shares of `total` for groups a follower may be in several of (interests): groups under `k` left out."""
    if total < k:
        return {}
    return _shares({name: n for name, n in counts.items() if n >= k}, total)


def _shares(counts: dict[str, int], total: int) -> dict[str, float]:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {name: round(n / total, SHARE_DIGITS) for name, n in ordered}
