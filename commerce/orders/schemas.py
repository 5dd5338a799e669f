"""The shapes the orders routes answer with, as `GET /api/openapi.json` describes them (the fuzz test checks that the
answers keep to them)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from commerce.fulfilment import lifecycle
from commerce.schemas import Answer
from livecore.http import Id

OrderState = Literal[lifecycle.STATES]  # type: ignore[valid-type]
AttemptState = Literal["offered", "charging", "requires_action", "paid", "declined", "refused", "expired"]


class AddressView(Answer):
    """An address as checked: the country as its alpha-2 code, the subdivision as its ISO 3166-2 code."""

    name: str
    line1: str
    line2: str | None
    city: str
    subdivision: str | None
    postcode: str | None
    country: str = Field(description="ISO 3166-1 alpha-2")
    phone: str | None


class QuoteView(Answer):
    service: str
    name: str
    shipping_cents: int
    currency: str
    min_delivery_days: int
    max_delivery_days: int
    address: AddressView
    variant_id: str
    quantity: int


class OrderLine(Answer):
    product_id: Id
    title: str
    variant_id: str
    quantity: int
    unit_price_cents: int


class OrderPayment(Answer):
    provider: str = Field(description="stripe, or local (the test card page)")
    payment_id: str | None = Field(description="the provider's payment (a PaymentIntent with Stripe)")
    client_secret: str | None = Field(default=None, description="while pending: what the page confirms with")
    pay_url: str | None = Field(default=None, description="while pending, with the local provider: its card page")


class Tracking(Answer):
    carrier: str | None = None
    number: str | None = None
    url: str | None = None


class HistoryEntry(Answer):
    state: OrderState
    source: str = Field(description="what moved it: checkout, auction, payment, fulfilment, buyer")
    detail: str | None
    at: int = Field(description="Unix milliseconds")


class OrderView(Answer):
    id: Id
    state: OrderState
    source: Literal["checkout", "auction"]
    auction_id: int | None
    buyer_id: Id
    creator_id: Id
    items: list[OrderLine]
    shipping_address: AddressView
    currency: str
    items_cents: int
    shipping_cents: int
    total_cents: int
    shipping_service: str
    refunded_cents: int
    payment: OrderPayment
    tracking: Tracking | None
    failure: str | None
    created_at: int = Field(description="Unix milliseconds")
    updated_at: int = Field(description="Unix milliseconds")
    history: list[HistoryEntry]


class Orders(Answer):
    orders: list[OrderView]
    next_before: int | None = Field(description="?before= for the next page; null on the last")


class SaleLine(Answer):
    product_id: Id
    variant_id: str
    quantity: int
    unit_price_cents: int


class Sale(Answer):
    order_id: Id
    state: OrderState
    items: list[SaleLine]
    items_cents: int
    margin_cents: int
    margin_released: bool = Field(description="it shipped: the margin is earned")
    refunded_cents: int
    paid_at: int | None = Field(description="Unix milliseconds")


class Sales(Answer):
    margin_held_cents: int
    margin_released_cents: int
    sales: list[Sale]
    next_before: int | None = Field(description="?before= for the next page; null on the last")


class FulfilmentReceipt(Answer):
    received: Literal[True]
    webhook_id: str
    outcome: str = Field(description="the order's new state, duplicate, stale or ignored")


class AttemptView(Answer):
    auction_id: Id
    n: int
    kind: Literal["win", "second_chance"]
    state: AttemptState
    amount_cents: int
    reason: str | None
    expires_at: int = Field(description="Unix milliseconds")
    order: OrderView | None


class Attempt(Answer):
    n: int
    bidder_id: Id
    kind: Literal["win", "second_chance"]
    state: AttemptState
    amount_cents: int
    reason: str | None
    order_id: int | None
    started_at: int = Field(description="Unix milliseconds")
    expires_at: int = Field(description="Unix milliseconds")
    ended_at: int | None = Field(description="Unix milliseconds")


class PaymentAttempts(Answer):
    auction_id: Id
    attempts: list[Attempt]
