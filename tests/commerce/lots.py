"""Test helpers for auctions: a live room with a product to auction and bidders with a saved test card, all made
through the node's real HTTP API; and a client-side fold of the room's auction events, written from the protocol's
description (keep the highest version, merge bids by number), to compare what clients saw with the database."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from images import design_png, upload
from livenode import RunningNode
from money import api, key

from commerce.providers import SUCCEEDING_CARD

VARIANT = "tshirt-s-black"  # base cost 1295: floor 1473 with the default fees
START_CENTS = 2000


@dataclass
class Room:
    seller: dict[str, Any]
    stream: dict[str, Any]
    product: dict[str, Any]


async def room_with_product(node: RunningNode) -> Room:
    seller = await node.signup()
    stream = await node.create_stream(seller["token"])
    status, design = await upload(node, seller["token"], design_png())
    assert status == 201, design
    status, product = await api(node, "POST", "/api/products", seller["token"], {
        "design_id": design["id"], "base_item_id": "tshirt", "title": "Auction tee", "price_cents": 2500,
        "variant_ids": [VARIANT, "tshirt-m-black"]})
    assert status == 201, product
    return Room(seller, stream, product)


async def bidder(node: RunningNode, **signup: Any) -> dict[str, Any]:
    """A signed-up adult with the local provider's test card saved."""
    account = await node.signup(**signup)
    status, method = await api(node, "POST", "/api/payment-methods", account["token"],
                               {"card_number": SUCCEEDING_CARD})
    assert status == 201, method
    return account


async def open_auction(node: RunningNode, room: Room, **terms: Any) -> dict[str, Any]:
    body = {"product_id": room.product["id"], "variant_id": VARIANT, "start_cents": START_CENTS,
            "duration_s": 60, "increments": "dollar", **terms}
    status, auction = await api(node, "POST", f"/api/streams/{room.stream['id']}/auctions", room.seller["token"],
                                body)
    assert status == 201, auction
    return auction


async def bid(node: RunningNode, token: str, auction_id: int, amount_cents: int, max_cents: int | None = None,
              idempotency_key: str | None = None) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"amount_cents": amount_cents, "idempotency_key": idempotency_key or key()}
    if max_cents is not None:
        body["max_cents"] = max_cents
    return await api(node, "POST", f"/api/auctions/{auction_id}/bids", token, body)


CHANGING = ("version", "state", "price_cents", "leader", "ends_at", "bids_count", "min_next_cents",
            "buy_now_available", "winner", "closed_by")


@dataclass
class AuctionFold:
    """One client's view of an auction, from its snapshot and then the room's `auction` events."""

    auction_id: int
    state: dict[str, Any] = field(default_factory=dict)
    bids: dict[int, dict[str, Any]] = field(default_factory=dict)

    def take_snapshot(self, snapshot: dict[str, Any]) -> None:
        auction = snapshot.get("auction")
        if auction and auction["id"] == self.auction_id:
            self._take(auction)

    def take(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            if event.get("type") == "auction" and event["auction_id"] == self.auction_id:
                self._take(event)

    def _take(self, event: dict[str, Any]) -> None:
        if not self.state or event["version"] > self.state["version"]:
            self.state = {k: event[k] for k in CHANGING}
        for entry in event.get("bids", ()):
            self.bids[entry["seq"]] = entry

    def history(self) -> list[dict[str, Any]]:
        return [self.bids[seq] for seq in sorted(self.bids)]


def database_view(auction: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """GET /api/auctions/{id} split the way `AuctionFold` keeps it."""
    return {k: auction[k] for k in CHANGING}, auction["bids"]
