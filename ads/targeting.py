"""Who an ad group may be shown to, and the reasons shown with it ("Why this ad").

An ad group with any targeting (age band, region, language or interests) is profiling-based: it is never shown to a
minor or to someone whose age is unknown. Those viewers may only get untargeted (contextual) ad groups.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

ADULT_AGE_YEARS = 18
# Bands an advertiser may target; minors are never a target, so their band is not among them.
AGE_BANDS = ("18-24", "25-34", "35-44", "45-54", "55+")
_BAND_FLOORS = ((55, "55+"), (45, "45-54"), (35, "35-44"), (25, "25-34"), (18, "18-24"))
MINOR_BAND = "13-17"
REASONS_MAX = 3
UNTARGETED_REASON = "Shown to everyone: not based on your profile"


@dataclass(frozen=True)
class Audience:
    """What the ad decision knows of a viewer; `age_band` is None when their age is unknown."""

    age_band: str | None
    region: str
    language: str
    interests: frozenset[str]

    @property
    def may_be_profiled(self) -> bool:
        return self.age_band is not None and self.age_band != MINOR_BAND


@dataclass(frozen=True)
class Targeting:
    """Empty tuples target anyone; a value in several fields must match in each (AND), within a field any (OR)."""

    age_bands: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    interests: tuple[str, ...] = ()

    @property
    def profiling(self) -> bool:
        return bool(self.age_bands or self.regions or self.languages or self.interests)


def age_band(birth_date: dt.date | None, today: dt.date) -> str | None:
    """The viewer's band, MINOR_BAND under 18, None when the birth date is unknown."""
    if birth_date is None:
        return None
    years = today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))
    for floor, band in _BAND_FLOORS:
        if years >= floor:
            return band
    return MINOR_BAND


def matches(targeting: Targeting, audience: Audience) -> bool:
    """Whether the ad group may be shown to this audience (`reasons_for` is not None), without the words."""
    if not targeting.profiling:
        return True
    return (audience.may_be_profiled
            and (not targeting.interests or not audience.interests.isdisjoint(targeting.interests))
            and (not targeting.age_bands or audience.age_band in targeting.age_bands)
            and (not targeting.regions or audience.region in targeting.regions)
            and (not targeting.languages or audience.language in targeting.languages))


def reasons_for(targeting: Targeting, audience: Audience) -> list[str] | None:
    """The main reasons this audience matches, or None when the ad group may not be shown to it."""
    if not targeting.profiling:
        return [UNTARGETED_REASON]
    if not audience.may_be_profiled:
        return None
    reasons: list[str] = []
    if targeting.interests:
        shared = sorted(audience.interests.intersection(targeting.interests))
        if not shared:
            return None
        reasons.append(f"Your interests: {', '.join(shared[:3])}")
    if targeting.age_bands:
        if audience.age_band not in targeting.age_bands:
            return None
        reasons.append(f"Your age ({audience.age_band})")
    if targeting.regions:
        if audience.region not in targeting.regions:
            return None
        reasons.append(f"Your region ({audience.region})")
    if targeting.languages:
        if audience.language not in targeting.languages:
            return None
        reasons.append(f"Your language ({audience.language})")
    return reasons[:REASONS_MAX]
