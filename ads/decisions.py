"""The ad decision for one feed slot: eligible ad groups by targeting, the pacer, the frequency caps, the auction.

`Decider.choose` is the decision over what this node holds in memory (no I/O); `frequency.py` adds the per-user caps
kept in Redis around it. A group's eCPM only changes when the inventory is read again (its predicted click rate comes
from the figures read then), so the groups are ranked by eCPM once per refresh, and a decision walks that ranking
from the top until it has the two best eligible bids: the winner and the price setter. Viewers who may not be
profiled (minors, unknown age) walk a ranking of the untargeted groups only. A refresh that changed a few campaigns
ranks only their groups again and merges them into the ranking kept.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from operator import attrgetter

from ads import pacing
from ads.auction import Bid, Outcome, predicted_ctr, run_auction
from ads.inventory import AdGroup, Creative, Inventory, LiveCampaign, Loaded
from ads.targeting import Audience, matches, reasons_for

PRICE_SETTERS = 2  # the auction needs the best eligible bid and the one after it
NO_COUNTS = (0, 0)  # impressions and clicks of a group never shown


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


class _Entry:
    """An ad group's bid in the ranking, with the counts its predicted click rate came from."""

    __slots__ = ("bid", "campaign", "counts", "group", "rank")

    def __init__(self, bid: Bid, campaign: LiveCampaign, group: AdGroup, counts: tuple[int, int]) -> None:
        self.bid, self.campaign, self.group, self.counts = bid, campaign, group, counts
        self.rank = (-bid.ecpm_cents, bid.ad_group_id)  # best eCPM first, ties the lower ad group id


@dataclass(frozen=True)
class Ranking:
    entries: dict[int, _Entry]  # every group by id
    ranked: list[_Entry]  # every group at or above the reserve, best eCPM first
    untargeted: list[_Entry]  # those of them that profile no one: what minors and unknown ages may get


_rank_key = attrgetter("rank")


class Decider:
    def __init__(self, inventory: Inventory, rule: AuctionRule, rng: random.Random | None = None) -> None:
        self.inventory = inventory
        self.rule = rule
        self.rng = rng or random.Random()
        self._version = -1
        self._ranking_now = Ranking({}, [], [])

    def rank(self) -> None:
        """Rank the inventory's groups now (a decision that finds the inventory replaced since does it itself)."""
        campaigns, counts = self.inventory.campaigns, self.inventory.counts
        self.install(self._ranked_from([self._entry(c, g, counts) for c in campaigns.values() for g in c.groups]))

    async def prepare(self, loaded: Loaded, per_turn_max: int) -> Ranking:
        """The ranking of what a refresh built, about to be installed, made `per_turn_max` groups per turn of the
        event loop, so that no decision waits for a whole ranking. Only the groups of the campaigns that moved and
        the CPC groups whose counts moved are ranked again (a CPM bid's eCPM and price do not depend on its click
        rate), unless the ranking in use is not the installed inventory's."""
        if self._version == self.inventory.version:
            return await self._prepare_moved(loaded, per_turn_max)
        entries: list[_Entry] = []
        for campaign in loaded.live.values():
            for group in campaign.groups:
                entries.append(self._entry(campaign, group, loaded.counts))
                if len(entries) % per_turn_max == 0:
                    await asyncio.sleep(0)
        return self._ranked_from(entries)

    async def _prepare_moved(self, loaded: Loaded, per_turn_max: int) -> Ranking:
        base, installed, campaigns = self._ranking_now, self.inventory.campaigns, loaded.live
        entries = dict(base.entries)
        fresh: list[_Entry] = []
        for n, campaign_id in enumerate(loaded.moved, 1):
            old, new = installed.get(campaign_id), campaigns.get(campaign_id)
            for group in old.groups if old else ():
                entries.pop(group.id, None)
            for group in new.groups if new else ():
                entries[group.id] = entry = self._entry(new, group, loaded.counts)
                fresh.append(entry)
            if n % per_turn_max == 0:
                await asyncio.sleep(0)
        for n, group_id in enumerate(loaded.recounted, 1):
            entry = entries.get(group_id)
            if entry is not None and entry.bid.kind == "cpc" and entry.campaign.id not in loaded.moved:
                entries[group_id] = entry = self._bid(entry.campaign, entry.group, loaded.counts)
                fresh.append(entry)
            if n % per_turn_max == 0:
                await asyncio.sleep(0)
        if not fresh and len(entries) == len(base.entries):
            return base
        reserve = self.rule.reserve_ecpm_cents
        fresh = [e for e in fresh if e.bid.ecpm_cents >= reserve]
        # The kept entries are in order already: sorting them with the few fresh ones is a merge.
        ranked = sorted([e for e in base.ranked if entries.get(e.group.id) is e] + fresh, key=_rank_key)
        untargeted = sorted([e for e in base.untargeted if entries.get(e.group.id) is e]
                            + [e for e in fresh if not e.group.targeting.profiling], key=_rank_key)
        return Ranking(entries, ranked, untargeted)

    def install(self, ranking: Ranking) -> None:
        """Use `ranking` from now on: call it in the same step as the inventory's own install."""
        self._ranking_now = ranking
        self._version = self.inventory.version

    def _entry(self, campaign: LiveCampaign, group: AdGroup, counts: dict[int, tuple[int, int]]) -> _Entry:
        """The group's bid; a group and campaign that kept their objects since the last ranking keep their entry,
        unless a CPC group's counts moved."""
        entry = self._ranking_now.entries.get(group.id)
        if entry is not None and entry.group is group and entry.campaign is campaign and (
                group.bid_kind == "cpm" or entry.counts == counts.get(group.id, NO_COUNTS)):
            return entry
        return self._bid(campaign, group, counts)

    def _bid(self, campaign: LiveCampaign, group: AdGroup, counts: dict[int, tuple[int, int]]) -> _Entry:
        impressions, clicks = figures = counts.get(group.id, NO_COUNTS)
        ctr = predicted_ctr(clicks, impressions, self.rule.ctr_prior, self.rule.ctr_prior_impressions)
        return _Entry(Bid(group.id, group.bid_kind, group.bid_cents, ctr), campaign, group, figures)

    def _ranked_from(self, entries: list[_Entry]) -> Ranking:
        ranked = sorted((e for e in entries if e.bid.ecpm_cents >= self.rule.reserve_ecpm_cents), key=_rank_key)
        return Ranking({e.group.id: e for e in entries}, ranked,
                       [e for e in ranked if not e.group.targeting.profiling])

    def choose(self, audience: Audience, now_ms: int, capped: frozenset[int]) -> Choice | None:
        """The winning ad group for this audience now, leaving out groups in `capped` (their frequency cap is
        reached); None when no eligible bid clears the reserve and its campaign's pacer."""
        if self._version != self.inventory.version:
            self.rank()
        paced: dict[int, bool] = {}
        found: list[_Entry] = []
        ranking = self._ranking_now
        for entry in ranking.ranked if audience.may_be_profiled else ranking.untargeted:
            campaign_id = entry.campaign.id
            if entry.group.id in capped or not matches(entry.group.targeting, audience):
                continue
            allowed = paced.get(campaign_id)
            if allowed is None:
                allowed = paced[campaign_id] = pacing.allows(
                    entry.campaign.schedule, self.inventory.spend.of(campaign_id, now_ms), now_ms, self.rule.pacing)
            if allowed:
                found.append(entry)
                if len(found) == PRICE_SETTERS:
                    break
        outcome = run_auction([e.bid for e in found], self.rule.reserve_ecpm_cents)
        if outcome is None:
            return None
        winner = found[0]
        reasons = reasons_for(winner.group.targeting, audience)
        assert reasons is not None  # it matched
        return Choice(winner.campaign, winner.group, self.rng.choice(winner.group.creatives), reasons, outcome)
