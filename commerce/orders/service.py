"""The orders context of one node: the fulfilment provider, the metrics, and the sweeps that place paid orders,
send refunds due and take won auctions through payment."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter

from commerce.fulfilment import FulfilmentProvider, FulfilmentUnavailable, SimulatorProvider
from commerce.orders import payments, provider_orders, winners
from livecore.http import Problem
from livecore.tasks import stop_tasks

if TYPE_CHECKING:
    from commerce.service import Commerce

log = logging.getLogger("livecore.commerce.orders")


class OrderMetrics:
    def __init__(self, registry: Any) -> None:
        self.callbacks = Counter("livecore_fulfilment_callbacks", "Verified fulfilment callbacks by outcome",
                                 ["outcome"], registry=registry)


class Orders:
    def __init__(self, commerce: Commerce) -> None:
        node = commerce.node
        self.commerce = commerce
        self.pool = node.pool
        self.clock = node.clock
        self.settings = node.settings
        self.metrics = OrderMetrics(node.registry)
        self._provider: FulfilmentProvider | None = None
        if self.settings.fulfilment_url:
            self._provider = SimulatorProvider(self.settings.fulfilment_url, self.settings.fulfilment_api_key,
                                               self.settings.fulfilment_timeout_s)
        self._tasks: list[asyncio.Task[None]] = []
        self._webhook_registered = False

    def provider(self) -> FulfilmentProvider:
        """The fulfilment provider; 503 when the node has none configured."""
        if self._provider is None:
            raise Problem(503, "fulfilment-not-configured", "this node has no fulfilment provider (fulfilment_url)")
        return self._provider

    async def start(self) -> None:
        if self._provider is None:
            return
        await self._register_webhook()
        s = self.settings
        self._tasks = [
            asyncio.create_task(self._every(s.order_sweep_s, self.sweep_orders, "placing orders and refunds")),
            asyncio.create_task(self._every(s.auction_payment_sweep_ms / 1000, self.sweep_winners,
                                            "taking won auctions through payment")),
        ]

    async def stop(self) -> None:
        await stop_tasks(*self._tasks)
        if isinstance(self._provider, SimulatorProvider):
            await self._provider.close()

    async def _register_webhook(self) -> None:
        """Tell the provider where its callbacks go (again each sweep until it has heard it)."""
        assert self._provider is not None
        try:
            await self._provider.register_webhook(self.settings.public_url.rstrip("/") + "/api/fulfilment/webhook")
            self._webhook_registered = True
        except FulfilmentUnavailable as exc:
            log.warning("could not tell the fulfilment provider where to send its callbacks: %s", exc)

    async def sweep_orders(self) -> None:
        if self._provider is not None and not self._webhook_registered:
            await self._register_webhook()
        await provider_orders.place_paid_orders(self.commerce)
        await payments.send_refunds(self.commerce)

    async def sweep_winners(self) -> None:
        await winners.sweep(self)

    async def after_payment_event(self, order_id: int, outcome: str) -> None:
        """What follows a committed payment event of an order: a paid order goes to the provider at once (the
        sweep catches one that could not), a refund owed is sent, a declined winner's lot moves on."""
        order = await self.pool.fetchrow("SELECT * FROM orders WHERE id = $1", order_id)
        if outcome == "order-paid" and self._provider is not None:
            await provider_orders.place_paid_orders(self.commerce, order_id)
            if order["source"] == "auction":
                await winners.after_paid(self, order)
        elif outcome == "order-refunded":
            await payments.send_refunds(self.commerce, order_id)
        elif outcome == "order-payment-failed" and order["source"] == "auction":
            await winners.sweep(self)

    async def _every(self, period_s: float, job: Callable[[], Awaitable[object]], what: str) -> None:
        while True:
            await asyncio.sleep(period_s)
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed; trying again next period", what)
