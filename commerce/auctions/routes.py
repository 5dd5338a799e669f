"""HTTP routes for live auctions: open one in your room, read it, bid, buy it now."""

from __future__ import annotations

from typing import Annotated, Literal

from aiohttp import web
from pydantic import Field

from commerce.auctions import auctions, increments, schemas
from commerce.auctions.service import Auctions
from commerce.requests import COMMERCE, IdempotencyKey, Keyed, OptionallyKeyed, keyed_body
from livecore.accounts.session import require_account
from livecore.http import (
    BIGINT_MAX,
    NO_NUL,
    Id,
    json_response,
    max_items_setting,
    maximum_setting,
    minimum_setting,
    operation,
    path_id,
)

PRICE_CENTS_MAX = 100_000_000
_Cents = Annotated[int, Field(ge=0, le=PRICE_CENTS_MAX)]
_Row = Annotated[list[_Cents], Field(min_length=2, max_length=2, description="[from_cents, step_cents]")]
Preset = Literal[tuple(sorted(increments.presets()))]  # type: ignore[valid-type]
_BID_CAP = maximum_setting("auction_bid_cents_max")
_BUSY = ["bids-busy", "auction-unavailable", "auction-busy", "node-stopping"]
_BIDDER_REFUSED = {402: ["payment-method-required"], 403: ["rule-adults-only", "seller-cannot-bid",
                                                           "moderator-cannot-bid"],
                   404: ["auction-not-found"], 503: _BUSY}


class NewAuction(OptionallyKeyed):
    product_id: Id
    variant_id: str = Field(max_length=100, pattern=NO_NUL)
    start_cents: int = Field(ge=1, le=PRICE_CENTS_MAX, description="at least the variant's floor (base cost + fees), "
                             "else 422 price-below-floor")
    duration_s: int = Field(json_schema_extra={**minimum_setting("auction_duration_s_min"),
                                               **maximum_setting("auction_duration_s_max")})
    increments: Preset | list[_Row] | None = Field(
        default=None, json_schema_extra=max_items_setting("auction_increment_steps_max"),
        description="a preset, or a custom table of at most auction_increment_steps_max rows that starts at 0 "
        "cents, ascends and steps by at least 1 cent (400 invalid-field otherwise)")
    sudden_death: bool = False
    buy_now_cents: int | None = Field(default=None, ge=1, le=PRICE_CENTS_MAX,
                                      description="above start_cents (400 invalid-field otherwise)")
    snipe_window_ms: int | None = Field(default=None, ge=0, le=BIGINT_MAX,
                                        json_schema_extra=maximum_setting("auction_snipe_window_ms_max"),
                                        description="a bid this close to the end extends it")
    extension_ms: int | None = Field(default=None, ge=0, le=BIGINT_MAX,
                                     json_schema_extra=maximum_setting("auction_extension_ms_max"),
                                     description="time left after a late bid")


class NewBid(Keyed):
    amount_cents: int = Field(ge=1, le=BIGINT_MAX, json_schema_extra=_BID_CAP)
    max_cents: int | None = Field(default=None, ge=1, le=BIGINT_MAX, json_schema_extra=_BID_CAP,
                                  description="bid for me up to this (proxy bidding); at least amount_cents (400 "
                                              "max-below-amount otherwise)")


class BuyNow(Keyed):
    pass


def _auctions(request: web.Request) -> Auctions:
    return request.app[COMMERCE].auctions


@operation("Start an auction of one of your product variants in your live room (one at a time)", body=NewAuction,
           headers=IdempotencyKey, status=201, auth=True, tag="auctions", reply=schemas.AuctionView,
           reply_statuses=(200,), responses={200: "A retry with the same idempotency key: the first auction"},
           problems={403: ["not-your-stream", "not-your-product"], 404: ["stream-not-found", "variant-not-found"],
                     409: ["stream-not-live", "auction-already-open"], 422: ["price-below-floor"]})
async def open_auction(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await keyed_body(request, NewAuction)
    stream_id = path_id(request, "stream-not-found", "stream")
    spec = body.model_dump(exclude={"idempotency_key"}, exclude_none=True)
    view, created = await auctions.open_auction(_auctions(request), account, stream_id, spec, body.idempotency_key)
    return json_response(view, status=201 if created else 200)


@operation("An auction: terms, state (open|closed), price, leader, ends_at (server ms), latest bids, winner",
           tag="auctions", reply=schemas.AuctionView, problems={404: ["auction-not-found"]})
async def get_auction(request: web.Request) -> web.Response:
    auction_id = path_id(request, "auction-not-found", "auction")
    return json_response(await auctions.auction_view(_auctions(request), auction_id))


@operation("Bid (18+, with a saved payment method); decided by the server's clock and committed before the answer",
           body=NewBid, headers=IdempotencyKey, auth=True, tag="auctions", reply=schemas.BidView,
           problems={**_BIDDER_REFUSED, 400: ["max-below-amount"],
                     409: ["auction-closed", "bid-too-low", "already-leading"]})
async def place_bid(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await keyed_body(request, NewBid)
    auction_id = path_id(request, "auction-not-found", "auction")
    return json_response(await auctions.place_bid(_auctions(request), account, auction_id, body.amount_cents,
                                                  body.max_cents, body.idempotency_key))


@operation("Buy it now at the buy-it-now price, ending the auction at once (18+, with a saved payment method)",
           body=BuyNow, headers=IdempotencyKey, auth=True, tag="auctions", reply=schemas.BidView,
           problems={**_BIDDER_REFUSED, 409: ["auction-closed", "buy-now-unavailable"]})
async def buy_now(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await keyed_body(request, BuyNow)
    auction_id = path_id(request, "auction-not-found", "auction")
    return json_response(await auctions.buy_now(_auctions(request), account, auction_id, body.idempotency_key))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/streams/{id}/auctions", open_auction)
    app.router.add_get("/api/auctions/{id}", get_auction)
    app.router.add_post("/api/auctions/{id}/bids", place_bid)
    app.router.add_post("/api/auctions/{id}/buy-now", buy_now)
