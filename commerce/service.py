"""The money context of one node: the catalogue, the account cache, providers, combos and its background sweep.

Other contexts reach it only through `livecore.node.GiftSender` (the room's `gift` command) and its routes.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import stripe
from prometheus_client import Counter

from commerce import catalogue, gifts
from commerce.catalogue import Catalogue
from commerce.combos import Combos
from commerce.ledger import Accounts
from commerce.providers import (
    LocalPayments,
    LocalPayouts,
    PaymentProvider,
    PayoutProvider,
    StripePayments,
    StripePayouts,
    stripe_client,
)
from livecore.accounts import get_account
from livecore.http import Problem
from livecore.node import Node
from livecore.tasks import stop_tasks

log = logging.getLogger("livecore.commerce")


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
        self.combos = Combos(node.redis, s.gift_combo_window_ms, s.gift_combo_sweep_batch_max)
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
        self._secrets: list[str] = []
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.catalogue = await catalogue.publish(self.node.pool)
        await self.accounts.create_platform_accounts()
        self._sweeper = asyncio.create_task(self._sweep_combos())
        log.info("commerce ready: payments through %s, gift catalogue v%d", self.payments.name,
                 self.catalogue.gift_version)

    async def stop(self) -> None:
        await stop_tasks(self._sweeper)
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

    # GiftSender, for the room's `gift` command

    async def send_gift(
        self, sender_id: int, stream_id: int, gift_id: str, count: int, idempotency_key: str
    ) -> dict[str, Any]:
        sender = await get_account(self.node.pool, sender_id)
        if sender is None:
            raise Problem(401, "bad-token", "the sender's account no longer exists")
        return await gifts.send_gift(self, sender, stream_id, gift_id, count, idempotency_key)

    async def _sweep_combos(self) -> None:
        while True:
            await asyncio.sleep(self.node.settings.gift_combo_sweep_ms / 1000)
            try:
                await gifts.end_due_combos(self)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ending gift combos failed; retrying next sweep")
