"""The auction for one feed slot: expected value per thousand impressions (eCPM), a reserve, second price.

eCPM in cents: a CPM bid is its bid; a CPC bid is bid x predicted click rate x 1000. The highest eCPM at or above the
reserve wins (ties: the lower ad group id). The winner pays the least that would still have won: the clearing eCPM
is the larger of the runner-up's eCPM and the reserve, converted to the winner's bid kind and rounded up to a whole
millicent, never above its own bid. A CPM winner pays that per impression (an eCPM of N cents is N millicents per
impression); a CPC winner pays clearing eCPM / predicted click rate millicents per click, charged only on a click.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

BidKind = Literal["cpm", "cpc"]


@dataclass(frozen=True)
class Bid:
    ad_group_id: int
    kind: BidKind
    cents: int
    ctr: float  # predicted click rate, 0 < ctr <= 1

    @property
    def ecpm_cents(self) -> float:
        return float(self.cents) if self.kind == "cpm" else self.cents * self.ctr * 1000

    def price_millicents(self, clearing_ecpm_cents: float) -> int:
        """What this bid pays per billable event (an impression for CPM, a click for CPC) at a clearing eCPM."""
        if self.kind == "cpm":
            return min(self.cents, math.ceil(clearing_ecpm_cents - 1e-9))
        return min(self.cents * 1000, math.ceil(clearing_ecpm_cents / self.ctr - 1e-6))


@dataclass(frozen=True)
class Outcome:
    winner: Bid
    clearing_ecpm_cents: float
    price_millicents: int


def run_auction(bids: list[Bid], reserve_ecpm_cents: float) -> Outcome | None:
    """The winner and what it pays, or None when no bid reaches the reserve."""
    ranked = sorted((b for b in bids if b.ecpm_cents >= reserve_ecpm_cents),
                    key=lambda b: (-b.ecpm_cents, b.ad_group_id))
    if not ranked:
        return None
    winner = ranked[0]
    clearing = max(reserve_ecpm_cents, ranked[1].ecpm_cents if len(ranked) > 1 else 0.0)
    return Outcome(winner, clearing, winner.price_millicents(clearing))


def predicted_ctr(clicks: int, impressions: int, prior_ctr: float, prior_impressions: int) -> float:
    """Clicks over impressions, smoothed toward `prior_ctr` as if `prior_impressions` had been seen at it."""
    return (clicks + prior_ctr * prior_impressions) / (impressions + prior_impressions)
