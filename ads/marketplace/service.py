"""The creator marketplace of one node: creators' cards kept fresh in the background, searched by advertisers, and
direct offers paid through the ledger's escrow (commerce.escrow); a delivered video's paid-partnership label goes
onto its feed cards through the feeds' label hook.

It reaches money only through `commerce.escrow` and the feeds only through `Feeds.labels`.
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import Counter

from ads.marketplace import listing, offers
from ads.marketplace.cards import CardRules
from commerce import Commerce
from feeds import Feeds
from livecore.node import Node
from livecore.tasks import stop_tasks

log = logging.getLogger("livecore.marketplace")

REFRESH_ROUNDS_PER_PERIOD = 12  # the background job looks for stale cards this often per marketplace_card_refresh_s
OFFERS_EXPIRED_PER_ROUND_MAX = 100  # offers one expiry sweep expires; the rest wait for the next sweep


class MarketplaceMetrics:
    def __init__(self, registry: object) -> None:
        self.cards = Counter("livecore_marketplace_cards_computed", "Creator cards computed", registry=registry)
        self.offers = Counter("livecore_marketplace_offers", "Offer steps taken, by the state they led to",
                              ["step"], registry=registry)


class Marketplace:
    def __init__(self, node: Node, commerce: Commerce, feeds: Feeds) -> None:
        s = node.settings
        self.node = node
        self.commerce = commerce
        self.feeds = feeds
        self.metrics = MarketplaceMetrics(node.registry)
        self.rules = CardRules(s.marketplace_followers_min, s.marketplace_recent_videos_min, s.marketplace_recent_days,
                               s.marketplace_recent_videos_max, s.marketplace_growth_days,
                               s.marketplace_group_size_min)
        self._refresher: asyncio.Task[None] | None = None
        self._expirer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.feeds.labels.add(self.partnership_labels)
        self._refresher = asyncio.create_task(self._refresh_forever(), name="marketplace-cards")
        self._expirer = asyncio.create_task(self._expire_forever(), name="marketplace-offer-expiry")

    async def stop(self) -> None:
        await stop_tasks(self._refresher, self._expirer)

    async def expire_offers(self) -> int:
        """The sweep: expire offers past their delivery deadline (escrow back to the advertiser); how many."""
        return await offers.expire_overdue(self, OFFERS_EXPIRED_PER_ROUND_MAX)

    async def _expire_forever(self) -> None:
        while True:
            await asyncio.sleep(self.node.settings.offer_expiry_sweep_s)
            try:
                await self.expire_offers()
            except Exception:
                log.exception("expiring overdue offers failed; the next sweep goes on")

    async def partnership_labels(self, video_ids: list[int]) -> dict[int, list[dict[str, object]]]:
        return await offers.partnership_labels(self.node.pool, video_ids)

    async def refresh_cards(self) -> int:
        """Compute again a batch of cards older than the refresh time; how many."""
        return await listing.refresh_stale(self)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.node.settings.marketplace_card_refresh_s / REFRESH_ROUNDS_PER_PERIOD)
            try:
                await self.refresh_cards()
            except Exception:
                log.exception("refreshing creator cards failed")
