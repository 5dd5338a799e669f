"""The shapes the auction routes answer with, as `GET /api/openapi.json` describes them (the fuzz test checks that the
answers keep to them). The changing part is the one every room `auction` event carries (events.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from commerce.merch.schemas import BaseItemName, OfferedVariantView
from commerce.schemas import Answer
from livecore.http import Id


class Person(Answer):
    id: Id
    name: str


class IncrementsView(Answer):
    name: str = Field(description="a preset's name, or custom")
    steps: list[list[int]] = Field(description="[from_cents, step_cents] rows")


class AuctionChange(Answer):
    """What changes: a client keeps the copy with the highest version."""

    version: int
    state: Literal["open", "closed"]
    price_cents: int
    leader: Person | None
    ends_at: int = Field(description="server milliseconds")
    bids_count: int
    min_next_cents: int
    buy_now_available: bool
    winner: Person | None
    closed_by: Literal["time", "buy_now", "stream_end"] | None


class AuctionChanged(AuctionChange):
    auction_id: Id


class BidEntry(Answer):
    seq: int
    bidder: Person | None
    kind: Literal["bid", "raise", "proxy", "buy_now"]
    amount_cents: int
    outcome: str
    placed_at: int = Field(description="server milliseconds")


class OwnBid(BidEntry):
    max_cents: int | None = Field(description="your maximum (proxy bidding); private to you")


class AuctionProduct(Answer):
    id: Id
    title: str
    base_item: BaseItemName


class AuctionView(AuctionChange):
    id: Id
    stream_id: Id
    seller: Person
    product: AuctionProduct
    variant: OfferedVariantView
    currency: Literal["USD"]
    start_cents: int
    increments: IncrementsView
    sudden_death: bool
    buy_now_cents: int | None
    snipe_window_ms: int
    extension_ms: int
    opened_at: int
    duration_ms: int
    bids: list[BidEntry] = Field(description="the latest, oldest first (auction_bids_listed_max)")
    order_id: int | None = Field(description="the order of the latest payment attempt of a won lot (GET "
                                 "/api/auctions/{id}/payments); null before one")
    server_now: int = Field(description="the server's clock in milliseconds, to count down ends_at")


class BidView(Answer):
    outcome: Literal["leading", "outbid", "raised", "bought"]
    leading: bool
    bid: OwnBid
    auction: AuctionChanged
    idempotency_key: str
    replayed: bool = Field(description="a retry with the same key: the first answer")
