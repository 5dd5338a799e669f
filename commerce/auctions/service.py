"""The auction context of one node: its copies of the lots it takes bids for, the sweep that
closes auctions when their time is up, and the metrics."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Histogram

from commerce.auctions import auctions, events
from commerce.auctions.bidding import Bidding
from commerce.merch import Merch
from commerce.payment_methods import PaymentMethods
from livecore.node import Node, RoomEvents
from livecore.tasks import stop_tasks

log = logging.getLogger("livecore.commerce.auctions")


class AuctionMetrics:
    def __init__(self, registry: Any) -> None:
        self.bids = Counter("livecore_auction_bids", "Bids and buy-it-now offers decided, by outcome", ["outcome"],
                            registry=registry)
        self.batch = Histogram("livecore_auction_bid_batch_bids", "Bids decided per committed batch",
                               registry=registry, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
        self.conflicts = Counter("livecore_auction_commit_conflicts",
                                 "Bid batches decided again because the lot changed elsewhere", registry=registry)
        self.closed = Counter("livecore_auctions_closed", "Auctions closed by this node, by outcome", ["outcome"],
                              registry=registry)


class Auctions:
    def __init__(self, node: Node, merch: Merch, payment_methods: PaymentMethods,
                 wake_relay: Callable[[], None]) -> None:
        self.node = node
        self.pool = node.pool
        self.clock = node.clock
        self.settings = node.settings
        self.merch = merch
        self.fees = merch.fees
        self.payment_methods = payment_methods
        self.metrics = AuctionMetrics(node.registry)
        self.bidding = Bidding(node.pool, node.clock, node.settings, self._moderators, events.after_bids,
                               self._batched, wake_relay)
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def rooms(self) -> RoomEvents | None:
        return self.node.rooms

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep())

    async def stop(self) -> None:
        await stop_tasks(self._sweeper)
        await self.bidding.stop()

    async def _moderators(self, room_id: int) -> frozenset[int]:
        return await self.node.rooms.moderators(room_id) if self.node.rooms is not None else frozenset()

    def _batched(self, bids: int, attempts: int) -> None:
        self.metrics.batch.observe(bids)
        if attempts > 1:
            self.metrics.conflicts.inc(attempts - 1)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.settings.auction_sweep_ms / 1000)
            try:
                await auctions.close_due(self)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("closing due auctions failed; trying again next period")
