"""HTTP routes for live auctions: open one in your room, read it, bid, buy it now."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from commerce.auctions import auctions
from commerce.auctions.service import Auctions
from commerce.requests import COMMERCE, idempotency_key
from livecore.accounts.session import require_account
from livecore.http import json_response, operation, parse_body, path_id

_KEY = Field(default=None, min_length=1, max_length=100,
             description="makes a retry return the first result; may come as the Idempotency-Key header instead")


class NewAuction(BaseModel):
    product_id: int = Field(gt=0)
    variant_id: str = Field(max_length=100)
    start_cents: int = Field(gt=0, le=100_000_000, description="at least the variant's floor (base cost + fees)")
    duration_s: int = Field(gt=0)
    increments: str | list[list[int]] | None = Field(
        default=None, description="a preset (ebay, whatnot, dollar) or [[from_cents, step_cents], ...]")
    sudden_death: bool = False
    buy_now_cents: int | None = Field(default=None, gt=0, le=100_000_000)
    snipe_window_ms: int | None = Field(default=None, ge=0, description="a bid this close to the end extends it")
    extension_ms: int | None = Field(default=None, ge=0, description="time left after a late bid")
    idempotency_key: str | None = _KEY


class NewBid(BaseModel):
    amount_cents: int = Field(gt=0)
    max_cents: int | None = Field(default=None, gt=0, description="bid for me up to this (proxy bidding)")
    idempotency_key: str | None = _KEY


class BuyNow(BaseModel):
    idempotency_key: str | None = _KEY


def _auctions(request: web.Request) -> Auctions:
    return request.app[COMMERCE].auctions


@operation("Start an auction of one of your product variants in your live room (one at a time)", body=NewAuction,
           status=201, auth=True, tag="auctions",
           responses={200: "A retry with the same idempotency key: the first auction",
                      400: "Bad terms (duration, increments, buy-it-now, anti-sniping)",
                      403: "Not your stream or not your product", 404: "No such stream, product or variant",
                      409: "The stream is not live, or an auction is already open in it",
                      422: "The start price is under the variant's floor (price-below-floor)"})
async def open_auction(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await parse_body(request, NewAuction)
    stream_id = path_id(request, "stream-not-found", "stream")
    spec = body.model_dump(exclude={"idempotency_key"}, exclude_none=True)
    key = body.idempotency_key or request.headers.get("Idempotency-Key", "").strip()[:100] or None
    view, created = await auctions.open_auction(_auctions(request), account, stream_id, spec, key)
    return json_response(view, status=201 if created else 200)


@operation("An auction: terms, state (open|closed), price, leader, ends_at (server ms), latest bids, winner",
           tag="auctions", responses={404: "No such auction"})
async def get_auction(request: web.Request) -> web.Response:
    auction_id = path_id(request, "auction-not-found", "auction")
    return json_response(await auctions.auction_view(_auctions(request), auction_id))


@operation("Bid (18+, with a saved payment method); decided by the server's clock and committed before the answer",
           body=NewBid, auth=True, tag="auctions",
           responses={400: "A malformed bid (max below amount, over auction_bid_cents_max)",
                      402: "No saved payment method (payment-method-required)",
                      403: "Under 18, the seller, or a moderator of the room", 404: "No such auction",
                      409: "Closed, below the minimum next bid (min_next_cents), or already leading",
                      503: "Too many bids waiting on this node (auction_bid_queue_max); bid again"})
async def place_bid(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await parse_body(request, NewBid)
    key = idempotency_key(request, body.idempotency_key)
    auction_id = path_id(request, "auction-not-found", "auction")
    return json_response(await auctions.place_bid(_auctions(request), account, auction_id, body.amount_cents,
                                                  body.max_cents, key))


@operation("Buy it now at the buy-it-now price, ending the auction at once (18+, with a saved payment method)",
           body=BuyNow, auth=True, tag="auctions",
           responses={402: "No saved payment method (payment-method-required)",
                      403: "Under 18, the seller, or a moderator of the room", 404: "No such auction",
                      409: "Closed, or buy-it-now is not available (any more)",
                      503: "Too many bids waiting on this node (auction_bid_queue_max)"})
async def buy_now(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await parse_body(request, BuyNow)
    key = idempotency_key(request, body.idempotency_key)
    auction_id = path_id(request, "auction-not-found", "auction")
    return json_response(await auctions.buy_now(_auctions(request), account, auction_id, key))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/streams/{id}/auctions", open_auction)
    app.router.add_get("/api/auctions/{id}", get_auction)
    app.router.add_post("/api/auctions/{id}/bids", place_bid)
    app.router.add_post("/api/auctions/{id}/buy-now", buy_now)
