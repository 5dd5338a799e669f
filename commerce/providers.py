"""Payment and payout providers: Stripe through the `stripe` SDK, or the local test provider.

The local provider is a real part, not a mock: it hands out payment ids and client secrets, its test card page
(/pay.html) confirms a payment, and it then signs a Stripe-shaped event with the webhook secret exactly as
Stripe does and delivers it to the same webhook code. Coins are only ever credited from that verified event.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
import stripe

SUCCEEDING_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"


@dataclass(frozen=True)
class PaymentStart:
    provider_ref: str
    client_secret: str


class PaymentProviderError(Exception):
    """The provider could not be reached or refused the request."""


class PayoutFailed(Exception):
    """The provider did not send the money; the message says why."""


class PaymentProvider(Protocol):
    name: str

    async def start_payment(
        self, amount_cents: int, currency: str, metadata: dict[str, str], idempotency_key: str
    ) -> PaymentStart: ...


class PayoutProvider(Protocol):
    name: str

    async def send_payout(self, creator_id: int, amount_cents: int, idempotency_key: str) -> str: ...


def stripe_client(secret_key: str, api_base: str, transport: stripe.AIOHTTPClient) -> stripe.StripeClient:
    """A StripeClient on aiohttp; `api_base` points it at another Stripe-compatible server (localstripe)."""
    base = {"api": api_base} if api_base else None
    return stripe.StripeClient(secret_key, base_addresses=base, http_client=transport, max_network_retries=2)


class StripePayments:
    name = "stripe"

    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client

    async def start_payment(
        self, amount_cents: int, currency: str, metadata: dict[str, str], idempotency_key: str
    ) -> PaymentStart:
        try:
            intent = await self._client.v1.payment_intents.create_async(
                {"amount": amount_cents, "currency": currency, "metadata": metadata},
                {"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise PaymentProviderError(f"Stripe refused the payment: {exc.user_message or exc}") from exc
        return PaymentStart(intent.id, intent.client_secret or "")


class StripePayouts:
    """Cash-out as a Stripe Connect transfer to the creator's connected account."""

    name = "stripe"

    def __init__(self, client: stripe.StripeClient, pool: asyncpg.Pool) -> None:
        self._client = client
        self._pool = pool

    async def send_payout(self, creator_id: int, amount_cents: int, idempotency_key: str) -> str:
        destination = await self._pool.fetchval(
            "SELECT stripe_account FROM payout_destinations WHERE creator_id = $1", creator_id
        )
        if destination is None:
            raise PayoutFailed("no Stripe connected account is set up for this creator")
        try:
            transfer = await self._client.v1.transfers.create_async(
                {"amount": amount_cents, "currency": "usd", "destination": destination},
                {"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise PayoutFailed(f"Stripe refused the transfer: {exc.user_message or exc}") from exc
        return transfer.id


class LocalPayments:
    name = "local"

    async def start_payment(
        self, amount_cents: int, currency: str, metadata: dict[str, str], idempotency_key: str
    ) -> PaymentStart:
        ref = "lpi_" + secrets.token_urlsafe(12)
        return PaymentStart(ref, f"{ref}_secret_{secrets.token_urlsafe(12)}")


def local_payment_event(event_type: str, purchase: asyncpg.Record, created_s: int) -> dict[str, Any]:
    """A Stripe-shaped event about one of the local provider's payments."""
    intent = {
        "id": purchase["provider_ref"], "object": "payment_intent", "amount": purchase["amount_cents"],
        "currency": purchase["currency"], "metadata": {"purchase_id": str(purchase["id"])},
        "status": "succeeded" if event_type == "payment_intent.succeeded" else "requires_payment_method",
    }
    return {"id": "evt_local_" + secrets.token_urlsafe(12), "object": "event", "type": event_type,
            "created": created_s, "data": {"object": intent}}


class LocalPayouts:
    """Pays out at once; a creator listed in `failing` gets a failed payout (how tests and demos see reversals)."""

    name = "local"

    def __init__(self) -> None:
        self.failing: set[int] = set()

    async def send_payout(self, creator_id: int, amount_cents: int, idempotency_key: str) -> str:
        if creator_id in self.failing:
            raise PayoutFailed("the local test bank declined the transfer")
        return "lpo_" + secrets.token_urlsafe(12)
