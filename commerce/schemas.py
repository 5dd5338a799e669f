"""The shapes the money routes answer with, as `GET /api/openapi.json` describes them (the fuzz test checks that
the answers keep to them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from livecore.http import Id


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CoinPackageView(Answer):
    id: str
    coins: int = Field(gt=0)
    amount_cents: int = Field(gt=0)
    currency: str


class CoinPackages(Answer):
    packages: list[CoinPackageView]
    provider: str = Field(description="who takes the payment: stripe, or local (the test card page)")


class PurchaseView(Answer):
    id: Id
    package_id: str
    coins: int
    amount_cents: int
    currency: str
    state: Literal["created", "succeeded", "failed", "reversed"]
    provider: str
    payment_id: str | None = Field(description="the provider's payment (a PaymentIntent with Stripe)")
    client_secret: str | None = Field(description="what the page confirms the payment with")
    pay_url: str | None = Field(default=None, description="the local test provider's card page")


class WebhookReceipt(Answer):
    received: Literal[True]
    event: str
    outcome: Literal["credited", "reversed", "failed", "duplicate", "ignored", "updated"]


class Earnings(Answer):
    held_diamonds: int
    withdrawable_diamonds: int
    withdrawable_cents: int
    payout_pending_cents: int
    diamonds_per_cent: int
    hold_s: int
    payout_cents_min: int


class Move(Answer):
    account: str = Field(description="the kind of the owner's account: coins, earnings_held, ...")
    currency: Literal["COIN", "DIAMOND", "USD"]
    amount: int


class TransactionView(Answer):
    id: Id
    kind: str
    ts: int = Field(description="server milliseconds")
    stream_id: Id | None
    details: dict[str, Any]
    moves: list[Move]


class Wallet(Answer):
    coins: int = Field(ge=0)
    frozen: bool
    earnings: Earnings
    transactions: list[TransactionView]


class GiftView(Answer):
    id: str
    name: str
    icon_url: str = Field(description="the gift's SVG, served under /static/icons/gifts/")
    coins: int = Field(gt=0)


class RateView(Answer):
    version: int
    diamonds_per_coin: int
    creator_share_percent: int
    diamonds_per_cent: int


class GiftCatalogue(Answer):
    version: int
    gifts: list[GiftView]
    rate: RateView


class GiftSent(Answer):
    transaction_id: Id
    stream_id: Id
    gift_id: str
    count: int = Field(ge=1)
    coins: int
    coins_balance: int = Field(ge=0)
    replayed: bool = Field(description="true when this is the answer to an earlier request with the same key")


class Gifter(Answer):
    id: Id
    username: str
    name: str


class Leader(Answer):
    rank: int = Field(ge=1)
    user: Gifter
    coins: int


class Leaderboard(Answer):
    stream_id: Id
    leaders: list[Leader]


class PayoutView(Answer):
    id: Id
    amount_cents: int
    diamonds: int
    state: Literal["pending", "paid", "failed", "reversed"]
    provider: str
    provider_ref: str | None
    failure: str | None
    reversed_cents: int
    ts: int = Field(description="server milliseconds")


class Payouts(Answer):
    payouts: list[PayoutView] = Field(description="newest first")


class DestinationView(Answer):
    provider: str
    state: Literal["none", "onboarding", "restricted", "active", "rejected", "closed"]
    account_id: str | None
    payouts_enabled: bool
    requirements_due: list[str]
    disabled_reason: str | None
    onboarding_url: str | None
    onboarding_expires_at: int | None


class Unfrozen(Answer):
    user_id: Id
    was_frozen: bool
    shortfall_coins_resolved: int


class PaymentMethodView(Answer):
    id: Id
    provider: str
    brand: str
    last4: str
    state: Literal["ready"]
    created_at: int = Field(description="Unix milliseconds")


class CardSetupView(Answer):
    state: Literal["requires_confirmation"]
    provider: str
    setup_intent_id: str
    client_secret: str = Field(description="what Stripe.js confirms the SetupIntent with")


class SavedOrSetUp(RootModel[PaymentMethodView | CardSetupView]):
    """201: the saved method; 202: the SetupIntent to confirm first."""


class PaymentMethods(Answer):
    methods: list[PaymentMethodView]
