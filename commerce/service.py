"""The money context of one node: the catalogue, the account cache, providers, combos, merch, auctions, orders, the
relay of committed room events (event_outbox.py) and the background sweeps.

Other contexts reach it only through `livecore.node.GiftSender` (the room's `gift` command),
`livecore.node.RoomShop` (the room's pinned product and auction in join snapshots, its `bid` command) and its
routes.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import stripe
from prometheus_client import Counter

from commerce import catalogue, gifts, payouts
from commerce.auctions import Auctions, close_due, latest_in_room, place_bid
from commerce.catalogue import Catalogue
from commerce.combos import Combos
from commerce.event_outbox import EventRelay
from commerce.gift_batches import GiftBatcher
from commerce.ledger import Accounts
from commerce.merch import Merch, pinned
from commerce.orders import Orders
from commerce.payment_methods import PaymentMethods
from commerce.providers import (
    LocalPayments,
    LocalPayouts,
    PaymentProvider,
    PayoutProvider,
    StripePayments,
    StripePayouts,
    stripe_client,
)
from commerce.room_shop import RoomShopView
from livecore.http import Problem
from livecore.node import Node
from livecore.streams import get_stream
from livecore.tasks import stop_tasks

log = logging.getLogger("livecore.commerce")

_CREATORS_REMEMBERED_MAX = 100_000  # stream -> creator ids kept per node; forgotten all at once past this


class CommerceMetrics:
    def __init__(self, registry: Any) -> None:
        self.ledger_transactions = Counter(
            "livecore_ledger_transactions", "Journal transactions posted", ["kind"], registry=registry)
        self.gifts = self.ledger_transactions.labels(kind="gift")
        self.webhooks = Counter(
            "livecore_payment_webhooks", "Verified payment webhooks by outcome", ["outcome"], registry=registry)


class Commerce:
    def __init__(self, node: Node) -> None:
        s = node.settings
        self.node = node
        self.accounts = Accounts(node.pool, s.ledger_platform_shards)
        self.combos = Combos(node.redis, s.gift_combo_window_ms, s.gift_combo_sweep_batch_max,
                             s.gift_combo_hit_remembered_ms)
        self.metrics = CommerceMetrics(node.registry)
        self.catalogue: Catalogue
        self.payments: PaymentProvider
        self.payouts: PayoutProvider
        self._transport: stripe.AIOHTTPClient | None = None
        if s.stripe_secret_key:
            self._transport = stripe.AIOHTTPClient()
            client = stripe_client(s.stripe_secret_key, s.stripe_api_base, self._transport)
            self.payments, self.payouts = StripePayments(client), StripePayouts(client, node.pool)
        else:
            self.payments, self.payouts = LocalPayments(), LocalPayouts()
        self.relay = EventRelay(node, lambda rows: gifts.complete(self, rows))
        self.gift_batches = GiftBatcher(
            node.pool, self.accounts, node.clock, node.registry, batch_max=s.gift_batch_max,
            queue_max=s.gift_queue_max, workers=s.gift_batch_workers, spend_max_coins=s.gift_coins_per_day_max,
            on_committed=self.relay.wake,
        )
        self.merch = Merch(node)
        self.payment_methods = PaymentMethods(node.pool, self.payments, node.clock, s.payment_methods_per_user_max)
        self.auctions = Auctions(node, self.merch, self.payment_methods, self.relay.wake)
        self.orders = Orders(self)
        self._creators: dict[int, int] = {}
        self._secrets: list[str] = []
        self._sweepers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.catalogue = await catalogue.publish(self.node.pool)
        await self.merch.start()
        self.auctions.start()
        await self.accounts.create_platform_accounts()
        await self.orders.start()
        if self.node.rooms is not None:
            self.relay.start()
        self.gift_batches.start()
        s = self.node.settings
        self._sweepers = [
            asyncio.create_task(self._every(s.gift_combo_sweep_ms / 1000, gifts.end_due_combos, "ending gift combos")),
            asyncio.create_task(self._every(s.payout_retry_s, payouts.send_pending_again, "sending stuck payouts")),
        ]
        log.info("commerce ready: payments through %s, gift catalogue v%d", self.payments.name,
                 self.catalogue.gift_version)

    async def stop(self) -> None:
        await self.gift_batches.stop()
        await self.relay.stop()
        await stop_tasks(*self._sweepers)
        await self.orders.stop()
        await self.auctions.stop()
        self.merch.stop()
        if self._transport is not None:
            await self._transport.close_async()

    async def webhook_secrets(self) -> list[str]:
        """The secrets a webhook may be signed with, newest first; the local provider's is made once and stored."""
        if not self._secrets:
            configured = [s.strip() for s in self.node.settings.stripe_webhook_secrets.split(",") if s.strip()]
            if configured:
                self._secrets = configured
            elif self.payments.name == "local":
                await self.node.pool.execute(
                    "INSERT INTO payment_secrets (name, value) VALUES ('local_webhook', $1) ON CONFLICT DO NOTHING",
                    "whsec_" + secrets.token_urlsafe(32),
                )
                self._secrets = [await self.node.pool.fetchval(
                    "SELECT value FROM payment_secrets WHERE name = 'local_webhook'")]
            else:
                raise Problem(503, "webhooks-not-configured", "set stripe_webhook_secrets to receive Stripe events")
        return self._secrets

    async def creator_of(self, stream_id: int) -> int:
        """The creator of a stream (it never changes, so it is remembered); 404 when there is no such stream."""
        creator_id = self._creators.get(stream_id)
        if creator_id is None:
            stream = await get_stream(self.node.pool, stream_id)
            if stream is None:
                raise Problem(404, "stream-not-found", f"there is no stream {stream_id}")
            if len(self._creators) >= _CREATORS_REMEMBERED_MAX:
                self._creators.clear()
            creator_id = self._creators[stream_id] = stream.creator_id
        return creator_id

    # GiftSender, for the room's `gift` command

    async def send_gift(
        self, sender_id: int, stream_id: int, gift_id: str, count: int, idempotency_key: str
    ) -> dict[str, Any]:
        sender = await self.node.accounts.get(sender_id)
        if sender is None:
            raise Problem(401, "bad-token", "the sender's account no longer exists")
        return await gifts.send_gift(self, sender, stream_id, gift_id, count, idempotency_key)

    # RoomShop, for the room's join snapshots and its `bid` command

    def room_view(self) -> RoomShopView:
        return RoomShopView(self.node.settings.auction_snapshot_bids_max)

    async def load_room_view(self, room_id: int, view: RoomShopView) -> None:
        pin = await pinned(self.node.pool, room_id)
        if pin is not None:
            view.apply(pin)
        auction = await latest_in_room(self.auctions, room_id)
        if auction is not None:
            view.take_auction(auction)

    async def place_bid(
        self, bidder_id: int, room_id: int, auction_id: int, amount_cents: int, max_cents: int | None,
        idempotency_key: str,
    ) -> dict[str, Any]:
        bidder = await self.node.accounts.get(bidder_id)
        if bidder is None:
            raise Problem(401, "bad-token", "the bidder's account no longer exists")
        return await place_bid(self.auctions, bidder, auction_id, amount_cents, max_cents, idempotency_key, room_id)

    async def close_ended_rooms(self) -> None:
        await close_due(self.auctions)

    async def _every(self, period_s: float, job: Callable[[Commerce], Awaitable[object]], what: str) -> None:
        while True:
            await asyncio.sleep(period_s)
            try:
                await job(self)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed; trying again next period", what)
