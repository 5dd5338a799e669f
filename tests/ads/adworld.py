"""An in-memory inventory of synthetic campaigns for the decision tests and the benchmark (no database)."""

from __future__ import annotations

from typing import Any

from ads.auction import BidKind
from ads.inventory import AdGroup, Creative, Inventory, LiveCampaign
from ads.pacing import Pacing, Schedule
from ads.targeting import Targeting

VIDEO: dict[str, Any] = {"id": 1}


def group(group_id: int, campaign_id: int, *, kind: BidKind = "cpm", cents: int = 300,
          targeting: Targeting | None = None, cap: int = 1000) -> AdGroup:
    return AdGroup(group_id, campaign_id, kind, cents, targeting or Targeting(), cap,
                   (Creative(group_id, VIDEO, "headline", None),))


def campaign(campaign_id: int, groups: list[AdGroup], *, daily_cents: int = 10**9, lifetime_cents: int = 10**9,
             pacing: Pacing = "asap", starts_ms: int = 0, ends_ms: int = 2**62) -> LiveCampaign:
    return LiveCampaign(campaign_id, campaign_id, {"id": campaign_id, "name": f"sponsor {campaign_id}"},
                        Schedule(starts_ms, ends_ms, daily_cents * 1000, lifetime_cents * 1000, pacing),
                        tuple(groups))


def inventory_of(campaigns: list[LiveCampaign]) -> Inventory:
    inventory = Inventory(pool=None, campaigns_max=len(campaigns), build_per_turn_max=100)  # type: ignore[arg-type]  # never refreshed
    inventory.replace({c.id: c for c in campaigns})
    return inventory
