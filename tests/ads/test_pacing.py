"""A day of synthetic For You traffic through the real decision (targeting, pacer, auction) on a driven clock: each
paced campaign spends its day budget within 5%, and no hour more than 1.5 times its share of it."""

from __future__ import annotations

import math
import random

import pytest
from adworld import campaign, group, inventory_of

from ads.decisions import AuctionRule, Decider
from ads.pacing import DAY_MS, HOUR_MS, Pacing, PacingRule, curve
from ads.targeting import Audience
from livecore.clock import ManualClock

DAY_START_MS = 1_800_000_000_000 - 1_800_000_000_000 % DAY_MS
RULE = AuctionRule(50, 0.01, 200, PacingRule(0.01, 1.3))
BUDGET_CENTS = 2_000  # per day, for each campaign
AUDIENCE = Audience("25-34", "US", "en", frozenset({"cats"}))


def requests_in_hour(hour: int) -> int:
    """Diurnal traffic: a quiet night (about 1,500 slots an hour), a busy evening (about 6,000)."""
    return int(3_750 - 2_250 * math.cos((hour - 3) / 24 * 2 * math.pi))


def simulate(pacing: Pacing, seed: int) -> dict[int, list[int]]:
    """Spend per campaign per hour (millicents) over one day; every decision's price charged on a shown ad."""
    clock = ManualClock(DAY_START_MS)
    rng = random.Random(seed)
    campaigns = [campaign(1, [group(1, 1, cents=400)], daily_cents=BUDGET_CENTS, lifetime_cents=BUDGET_CENTS * 30,
                          pacing=pacing),
                 campaign(2, [group(2, 2, cents=250)], daily_cents=BUDGET_CENTS, lifetime_cents=BUDGET_CENTS * 30,
                          pacing=pacing),
                 campaign(3, [group(3, 3, cents=120)])]  # an unpaced filler that bids under both
    decider = Decider(inventory_of(campaigns), RULE, rng)
    spend = {c.id: [0] * 24 for c in campaigns}
    for hour in range(24):
        count = requests_in_hour(hour)
        for n in range(count):
            clock._now_ms = DAY_START_MS + hour * HOUR_MS + n * HOUR_MS // count
            choice = decider.choose(AUDIENCE, clock.now_ms(), frozenset())
            if choice is not None and rng.random() < 0.9:  # a shown ad's impression event arrives (CPM)
                decider.inventory.spend.add(choice.campaign.id, clock.now_ms(), choice.outcome.price_millicents)
                spend[choice.campaign.id][hour] += choice.outcome.price_millicents
    return spend


@pytest.mark.parametrize("pacing", ["even", "front_loaded"])
def test_a_day_of_traffic_spends_the_budget_over_the_day(pacing: Pacing) -> None:
    spend = simulate(pacing, seed=7)
    budget = BUDGET_CENTS * 1000
    for campaign_id in (1, 2):
        hours = spend[campaign_id]
        assert abs(sum(hours) - budget) <= 0.05 * budget, (campaign_id, sum(hours))
        for hour, spent in enumerate(hours):
            share = budget * (curve(pacing, (hour + 1) / 24) - curve(pacing, hour / 24))
            assert spent <= 1.5 * share, (campaign_id, hour, spent, share)
    assert sum(spend[3]) > 0  # the unpaced bidder takes the slots the pacer keeps from the others


def test_asap_spends_the_budget_as_early_as_traffic_allows() -> None:
    spend = simulate("asap", seed=7)
    budget = BUDGET_CENTS * 1000
    assert abs(sum(spend[1]) - budget) <= 0.05 * budget
    spent_hours = [hour for hour, spent in enumerate(spend[1]) if spent]
    assert spent_hours == list(range(len(spent_hours)))  # it won every slot it could from the start, then stopped
    assert len(spent_hours) < 12 and spend[1][0] > spend[2][0]
