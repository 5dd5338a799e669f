"""Saved ways to pay: a card kept by the payment provider for its customer (one per user and provider), so an
auction's winner (and later a buyer) can be charged off-session. Bidding needs one.

With Stripe a card is saved in two steps: `POST /api/payment-methods` answers a SetupIntent (usage off_session)
that the page confirms with Stripe.js, then the same call with its `setup_intent_id` keeps the card Stripe saved.
The local test provider takes a test card number at once.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from commerce.providers import CardRefused, CardSetup, PaymentProvider, PaymentProviderError
from livecore.accounts import Account
from livecore.clock import Clock
from livecore.http import Problem

_HAVE_ONE_REMEMBERED_MAX = 100_000  # users known to have a saved method, per node; forgotten all at once past this


class PaymentMethods:
    def __init__(self, pool: asyncpg.Pool, payments: PaymentProvider, clock: Clock, per_user_max: int) -> None:
        self._pool = pool
        self._payments = payments
        self._clock = clock
        self._per_user_max = per_user_max
        self._have_one: set[int] = set()  # methods are never removed, so a yes can be remembered

    async def require(self, owner_id: int) -> None:
        """402 `payment-method-required` unless the user has saved a way to pay."""
        if owner_id in self._have_one:
            return
        if not await self._pool.fetchval("SELECT 1 FROM payment_methods WHERE owner_id = $1 LIMIT 1", owner_id):
            raise Problem(402, "payment-method-required",
                          "save a way to pay first (POST /api/payment-methods), so a win can be charged",
                          rule="payment_method_required")
        if len(self._have_one) >= _HAVE_ONE_REMEMBERED_MAX:
            self._have_one.clear()
        self._have_one.add(owner_id)

    async def save(self, owner: Account, card_number: str | None, setup_intent_id: str | None
                   ) -> tuple[dict[str, Any], int]:
        """Save a card (201), or answer the SetupIntent the page must confirm first (202)."""
        customer = await self._customer(owner.id)
        try:
            saved = await self._payments.save_card(customer, card_number, setup_intent_id)
        except CardRefused as exc:
            raise Problem(402 if exc.code == "card-declined" else 409 if exc.code == "setup-not-complete" else 400,
                          exc.code, str(exc)) from exc
        except PaymentProviderError as exc:
            raise Problem(502, "payment-provider-unavailable", str(exc)) from exc
        if isinstance(saved, CardSetup):
            return {"state": "requires_confirmation", "provider": self._payments.name,
                    "setup_intent_id": saved.setup_ref, "client_secret": saved.client_secret}, 202
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('payment_methods'), $1::int)", owner.id)
            row = await conn.fetchrow(
                "SELECT * FROM payment_methods WHERE owner_id = $1 AND provider = $2 AND fingerprint = $3",
                owner.id, self._payments.name, saved.fingerprint)
            if row is None:
                count = await conn.fetchval("SELECT count(*) FROM payment_methods WHERE owner_id = $1", owner.id)
                if count >= self._per_user_max:
                    raise Problem(409, "too-many-payment-methods",
                                  f"at most {self._per_user_max} saved payment methods",
                                  rule="payment_methods_per_user_max", limit_value=self._per_user_max)
                row = await conn.fetchrow(
                    "INSERT INTO payment_methods (owner_id, provider, customer_ref, method_ref, brand, last4,"
                    " fingerprint, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
                    owner.id, self._payments.name, customer, saved.method_ref, saved.brand, saved.last4,
                    saved.fingerprint, self._clock.now_ms())
        self._have_one.add(owner.id)
        return method_view(row), 201

    async def list(self, owner_id: int) -> list[dict[str, Any]]:
        rows = await self._pool.fetch("SELECT * FROM payment_methods WHERE owner_id = $1 ORDER BY id", owner_id)
        return [method_view(r) for r in rows]

    async def _customer(self, owner_id: int) -> str:
        provider = self._payments.name
        found = await self._pool.fetchval(
            "SELECT customer_ref FROM payment_customers WHERE owner_id = $1 AND provider = $2", owner_id, provider)
        if found is not None:
            return found
        try:
            made = await self._payments.create_customer(owner_id)
        except PaymentProviderError as exc:
            raise Problem(502, "payment-provider-unavailable", str(exc)) from exc
        # Two requests at once may both make one; the first stored is the customer from then on.
        await self._pool.execute(
            "INSERT INTO payment_customers (owner_id, provider, customer_ref) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING", owner_id, provider, made)
        return await self._pool.fetchval(
            "SELECT customer_ref FROM payment_customers WHERE owner_id = $1 AND provider = $2", owner_id, provider)


def method_view(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "provider": row["provider"], "brand": row["brand"], "last4": row["last4"],
            "state": "ready", "created_at": row["created_ms"]}
