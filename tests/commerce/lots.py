"""Test helpers for auctions: a live room with a product to auction and bidders with a saved test card, all made
through the node's real HTTP API; a client-side fold of the room's auction events, written from the protocol's
description (keep the highest version, merge bids by number), to compare what clients saw with the database; and a
reference implementation of the rules, written from the issue's text, to compare the database with."""

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


class ReferenceAuction:
    """The rules as the issue states them, step by step, with no shortcuts shared with commerce/auctions."""

    def __init__(self, view: dict[str, Any], seller: int, moderators: set[int]) -> None:
        self.seller, self.moderators = seller, moderators
        self.start, self.steps = view["start_cents"], view["increments"]["steps"]
        self.sudden, self.buy_now = view["sudden_death"], view["buy_now_cents"]
        self.window, self.extension = view["snipe_window_ms"], view["extension_ms"]
        self.state, self.price, self.leader, self.leader_max = "open", self.start, None, 0
        self.ends_at, self.version, self.winner, self.closed_by = view["ends_at"], 1, None, None
        self.history: list[tuple[int, int, str, int, str]] = []  # seq, bidder, kind, amount, outcome

    def step(self, cents: int) -> int:
        return [s for f, s in self.steps if f <= cents][-1]

    def minimum(self) -> int:
        return self.start if self.leader is None else self.price + self.step(self.price)

    def _add(self, bidder: int, kind: str, amount: int, outcome: str) -> None:
        self.history.append((len(self.history) + 1, bidder, kind, amount, outcome))

    def offer(self, bidder: int, kind: str, amount: int, max_cents: int | None, now: int) -> str:
        if self.state == "closed" or now >= self.ends_at:
            return "auction-closed"
        if bidder == self.seller:
            return "seller-cannot-bid"
        if bidder in self.moderators:
            return "moderator-cannot-bid"
        if kind == "buy_now":
            if self.buy_now is None or self.price >= self.buy_now:
                return "buy-now-unavailable"
            self._add(bidder, "buy_now", self.buy_now, "bought")
            self.price, self.leader, self.leader_max, self.winner = self.buy_now, bidder, self.buy_now, bidder
            self.state, self.closed_by, self.ends_at, self.version = "closed", "buy_now", now, self.version + 1
            return "bought"
        if max_cents is not None and max_cents < amount:
            return "max-below-amount"
        ceiling = amount if max_cents is None else max_cents
        if bidder == self.leader:  # a leader never outbids themselves; they may raise their maximum
            if ceiling > self.leader_max and ceiling >= self.minimum():
                self.leader_max = ceiling
                self._add(bidder, "raise", self.price, "raised")
                self.version += 1
                return "raised"
            return "already-leading"
        if amount < self.minimum():
            return "bid-too-low"
        if self.leader is None:
            self.price, self.leader, self.leader_max, outcome = amount, bidder, ceiling, "leading"
            self._add(bidder, "bid", amount, "leading")
        elif ceiling > self.leader_max:  # the runner-up's maximum plus one increment, capped, never below the bid
            self.price = max(amount, min(self.leader_max + self.step(self.leader_max), ceiling))
            self.leader, self.leader_max, outcome = bidder, ceiling, "leading"
            self._add(bidder, "bid", self.price, "leading")
        else:  # the earlier maximum wins a tie and answers any lower one
            self.price, outcome = min(ceiling + self.step(ceiling), self.leader_max), "outbid"
            self._add(bidder, "bid", amount, "outbid")
            self._add(self.leader, "proxy", self.price, "leading")
        if not self.sudden and self.ends_at - now <= self.window and now + self.extension > self.ends_at:
            self.ends_at = now + self.extension
        self.version += 1
        return outcome

    def close(self, now: int) -> bool:
        if self.state != "open" or now < self.ends_at:
            return False
        self.state, self.winner, self.closed_by, self.version = "closed", self.leader, "time", self.version + 1
        return True
