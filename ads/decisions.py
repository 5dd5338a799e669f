"""The ad decision for one feed slot: eligible ad groups by targeting, the pacer, the frequency caps, the auction.

`Decider.choose` is the decision over what this node holds in memory (no I/O); `frequency.py` adds the per-user caps
kept in Redis around it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ads import pacing
from ads.auction import Bid, Outcome, predicted_ctr, run_auction
from ads.inventory import AdGroup, Creative, Inventory, LiveCampaign
from ads.targeting import Audience, reasons_for


@dataclass(frozen=True)
class AuctionRule:
    reserve_ecpm_cents: float
    ctr_prior: float
    ctr_prior_impressions: int
    pacing: pacing.PacingRule


@dataclass(frozen=True)
class Choice:
    campaign: LiveCampaign
    group: AdGroup
    creative: Creative
    reasons: list[str]
    outcome: Outcome


class Decider:
    def __init__(self, inventory: Inventory, rule: AuctionRule, rng: random.Random | None = None) -> None:
        self.inventory = inventory
        self.rule = rule
        self.rng = rng or random.Random()

    def choose(self, audience: Audience, now_ms: int, capped: frozenset[int]) -> Choice | None:
        """The winning ad group for this audience now, leaving out groups in `capped` (their frequency cap is
        reached); None when no eligible bid clears the reserve and its campaign's pacer."""
        bids: dict[int, tuple[Bid, LiveCampaign, AdGroup, list[str]]] = {}
        for campaign in self.inventory.campaigns.values():
            if not pacing.allows(campaign.schedule, self.inventory.spend.of(campaign.id, now_ms), now_ms,
                                 self.rule.pacing):
                continue
            for group in campaign.groups:
                if group.id in capped:
                    continue
                reasons = reasons_for(group.targeting, audience)
                if reasons is None:
                    continue
                ctr = predicted_ctr(group.clicks, group.impressions, self.rule.ctr_prior,
                                    self.rule.ctr_prior_impressions)
                bids[group.id] = (Bid(group.id, group.bid_kind, group.bid_cents, ctr), campaign, group, reasons)
        outcome = run_auction([b for b, _, _, _ in bids.values()], self.rule.reserve_ecpm_cents)
        if outcome is None:
            return None
        _, campaign, group, reasons = bids[outcome.winner.ad_group_id]
        return Choice(campaign, group, self.rng.choice(group.creatives), reasons, outcome)
