"""The ads context of one node: the in-memory inventory (refreshed), ad decisions for the For You feed, event
measurement and the background posting of spend to the ledger.

It reads accounts through livecore's account cache and videos through feeds' public functions; the feed asks it for
an ad per slot through the hook in feeds (Feeds.set_ad_stage), never the other way round.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from ads import billing, campaigns, events
from ads.decisions import AuctionRule, Choice, Decider
from ads.frequency import FrequencyCaps, choose_within_caps
from ads.impressions import ImpressionSigner
from ads.inventory import Inventory
from ads.pacing import PacingRule
from ads.recorder import EventRecorder
from ads.targeting import Audience, age_band
from feeds.viewers import Viewer
from livecore.node import Node
from livecore.outage import unreachable_part
from livecore.tasks import stop_tasks

log = logging.getLogger("livecore.ads")
CAP_RETRIES_MAX = 3  # auctions run again for one slot when a concurrent serve took the winner's last cap
SPEND_CAMPAIGNS_PER_ROUND_MAX = 1000  # campaigns whose charges one round posts; the rest wait for the next round
SETTLE_CAMPAIGNS_PER_ROUND_MAX = 100  # ended campaigns one sweep settles; the rest wait for the next sweep


class AdsMetrics:
    def __init__(self, registry: Any) -> None:
        self.decisions = Counter("livecore_ad_decisions", "Ad slots decided, by result (served, none, "
                                 "unavailable: Redis could not be reached, the slot left empty)", ["result"],
                                 registry=registry)
        self.decision_seconds = Histogram("livecore_ad_decision_seconds", "Time to decide one ad slot",
                                          buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1),
                                          registry=registry)
        self.events = Counter("livecore_ad_events", "Ad events received, by result", ["result"], registry=registry)
        self.spend_posted_cents = Counter("livecore_ad_spend_posted_cents", "Ad spend posted to the ledger, cents",
                                          registry=registry)
        self.events_pending = Gauge("livecore_ad_events_pending", "Ad events accepted for storing and waiting for "
                                    "their transaction (bounded by ads_events_pending_max)", registry=registry)
        self.event_writes = Counter("livecore_ad_event_writes", "Transactions that stored ad events, each holding "
                                    "the batches of the requests that arrived while the one before was written",
                                    registry=registry)
        self.budget_returned_cents = Counter("livecore_ad_budget_returned_cents", "Unspent budget of ended "
                                             "campaigns given back to advertisers' ad balance, cents",
                                             registry=registry)


class Ads:
    def __init__(self, node: Node) -> None:
        s = node.settings
        self.node = node
        self.metrics = AdsMetrics(node.registry)
        self.accounts = billing.AdAccounts(node.pool, s.ledger_platform_shards)
        self.inventory = Inventory(node.pool, s.ads_campaigns_in_memory_max, s.ads_refresh_rows_per_turn_max,
                                   s.ads_refresh_full_ms, s.ads_refresh_ms)
        self.decider = Decider(self.inventory, AuctionRule(
            s.ads_reserve_ecpm_cents, s.ads_ctr_prior_permille / 1000, s.ads_ctr_prior_impressions,
            PacingRule(s.ads_pacing_lookahead_permille / 1000, s.ads_pacing_hour_share_max_percent / 100)),
            random.Random())
        self.caps = FrequencyCaps(node.redis)
        self.signer = ImpressionSigner(node.tokens, s.ads_impression_ttl_s * 1000)
        self.recorder = EventRecorder(node.pool, s.ads_events_pending_max, s.ads_events_per_write_max,
                                      self.metrics.event_writes.inc)
        self.metrics.events_pending.set_function(lambda: self.recorder.pending_events)
        self._tasks: list[asyncio.Task[None]] = []
        self._refreshing = asyncio.Lock()

    async def start(self) -> None:
        s = self.node.settings
        await self.refresh()
        self._tasks += [
            asyncio.create_task(_every(s.ads_refresh_ms, self.refresh), name="ads-refresh"),
            asyncio.create_task(_every(s.ads_spend_post_ms, self.post_spend), name="ads-spend"),
            asyncio.create_task(_every(s.ads_settle_sweep_ms, self.settle_ended), name="ads-settle"),
        ]

    async def stop(self) -> None:
        await stop_tasks(*self._tasks)
        await self.recorder.close()

    async def refresh(self) -> None:
        """Read what changed in the inventory and rank what moved, in bounded steps; decisions go on with the last
        one meanwhile (and for as long as reads fail). One at a time: a refresh begun before a campaign changed must
        not install after the one that saw it."""
        async with self._refreshing:
            loaded = await self.inventory.refresh(self.node.clock.now_ms())
            ranking = await self.decider.prepare(loaded, self.node.settings.ads_refresh_rows_per_turn_max)
            self.inventory.install(loaded)
            self.decider.install(ranking)  # in the same step: no decision ranks the new inventory itself

    async def audience(self, viewer: Viewer) -> Audience:
        account = await self.node.accounts.get(viewer.id)
        band = age_band(account.birth_date if account else None, self.node.today())
        return Audience(band, viewer.region, viewer.language, frozenset(viewer.interests))

    async def ad_for_slot(self, viewer: Viewer, slot: int) -> dict[str, Any] | None:
        """An ad item for a For You slot, or None; Redis away leaves the slot empty rather than failing the feed."""
        started = asyncio.get_running_loop().time()
        try:
            item = await self._decide(viewer)
        except Exception as exc:
            if unreachable_part(exc) is None:
                raise
            self.metrics.decisions.labels(result="unavailable").inc()
            log.warning("ad slot left empty: %r", exc)
            return None
        self.metrics.decision_seconds.observe(asyncio.get_running_loop().time() - started)
        self.metrics.decisions.labels(result="served" if item else "none").inc()
        return item

    async def _decide(self, viewer: Viewer) -> dict[str, Any] | None:
        if not self.inventory.campaigns:
            return None
        audience = await self.audience(viewer)
        now_ms = self.node.clock.now_ms()
        choice = await choose_within_caps(self.decider, self.caps, viewer.id, audience, now_ms, CAP_RETRIES_MAX)
        return self._item(viewer.id, choice, now_ms) if choice else None

    def _item(self, user_id: int, choice: Choice, now_ms: int) -> dict[str, Any]:
        group, creative = choice.group, choice.creative
        impression_id, token = self.signer.issue(choice.campaign.id, group.id, creative.id, user_id, group.bid_kind,
                                                 choice.outcome.price_millicents, now_ms)
        return {"kind": "ad", "impression_id": impression_id, "impression": token, "campaign_id": choice.campaign.id,
                "sponsor": choice.campaign.sponsor, "reasons": choice.reasons, "headline": creative.headline,
                "landing_url": creative.landing_url, "video": creative.video}

    async def record_events(self, user_id: int, batch: list[events.Event]) -> events.Recorded:
        recorded = await self.recorder.record(events.Batch(user_id, batch))
        for campaign_id, at_ms, millicents in recorded.charges:
            self.inventory.spend.add(campaign_id, at_ms, millicents)
        self.metrics.events.labels(result="accepted").inc(recorded.accepted)
        self.metrics.events.labels(result="duplicate").inc(recorded.duplicates)
        return recorded

    async def post_spend(self) -> int:
        """Post every campaign's unposted charges to the ledger (a batch each); the cents posted."""
        s, total = self.node.settings, 0
        for campaign_id, advertiser_id in await billing.campaigns_with_unposted_spend(self.node.pool,
                                                                                 SPEND_CAMPAIGNS_PER_ROUND_MAX):
            total += await billing.post_spend(self.node.pool, self.accounts, campaign_id, advertiser_id,
                                              s.ads_spend_batch_max, self.node.clock.now_ms())
        self.metrics.spend_posted_cents.inc(total)
        return total

    async def end_campaign(self, campaign_id: int, advertiser_id: int) -> None:
        """End the advertiser's campaign and settle it. If settling fails half way (the database gone, the node
        stopped), the campaign has ended all the same and the sweep (`settle_ended`) settles it."""
        now_ms = self.node.clock.now_ms()
        await campaigns.end_campaign(self.node.pool, campaign_id, advertiser_id, now_ms)
        await self.refresh()  # out of this node's auctions now; the others' within ads_refresh_ms
        await self._settle(campaign_id, advertiser_id, now_ms)

    async def settle_ended(self) -> int:
        """The sweep: settle every campaign that ended and is not settled yet; how many it settled."""
        s, now_ms, settled = self.node.settings, self.node.clock.now_ms(), 0
        for campaign_id, advertiser_id in await billing.campaigns_to_settle(
                self.node.pool, now_ms, s.ads_settle_after_s * 1000, SETTLE_CAMPAIGNS_PER_ROUND_MAX):
            try:
                settled += await self._settle(campaign_id, advertiser_id, now_ms) is not None
            except Exception as exc:
                if unreachable_part(exc) is not None:
                    raise  # the next sweep goes on where this one stopped
                log.exception("campaign %d could not be settled; the sweep goes on with the others", campaign_id)
        return settled

    async def _settle(self, campaign_id: int, advertiser_id: int, now_ms: int) -> int | None:
        returned = await billing.settle(self.node.pool, self.accounts, campaign_id, advertiser_id,
                                        self.node.settings.ads_spend_batch_max, now_ms)
        if returned is not None:
            self.metrics.budget_returned_cents.inc(returned)
            log.info("campaign %d settled: %d cents given back", campaign_id, returned)
        return returned


async def _every(interval_ms: int, work: Callable[[], Awaitable[object]]) -> None:
    while True:
        await asyncio.sleep(interval_ms / 1000)
        try:
            await work()
        except Exception:
            log.exception("ads background work failed")
