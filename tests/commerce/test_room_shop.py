"""The room's shop view (commerce/room_shop.py): its fold of events in any order ends in the same state, and a
pin or a bid that lands while a viewer joins reaches that viewer, in the snapshot or as an event after it."""

from __future__ import annotations

import itertools
from typing import Any

import asyncpg
import pytest
from livenode import RunningNode, Servers
from lots import START_CENTS, AuctionFold, bid, bidder, database_view, open_auction, room_with_product
from money import api
from roomclient import events_until
from tablelocks import until_a_query_waits_for

from commerce.room_shop import CHANGING, RoomShopView

CAUGHT_UP_S_MAX = 30.0  # how long the joiner may take to see what the database has (a bound, not a figure)


def _state(auction_id: int, version: int, price: int) -> dict:
    return {k: None for k in CHANGING} | {"auction_id": auction_id, "version": version, "price_cents": price,
                                          "state": "open"}


EVENTS = [
    {"type": "auction", "action": "opened", "auction": {"id": 7, "start_cents": 100}, **_state(7, 1, 100)},
    {"type": "auction", "action": "bid", "bids": [{"seq": 1}, {"seq": 2}], **_state(7, 3, 300)},
    {"type": "auction", "action": "outbid", "user_ids": [5], **_state(7, 3, 300)},
    {"type": "auction", "action": "bid", "bids": [{"seq": 3}], **_state(7, 4, 400)},
    {"type": "product_pinned", "product": {"id": 1}, "pin_version": 1},
    {"type": "product_pinned", "product": None, "pin_version": 2},
]


def test_any_order_and_repeats_fold_to_the_same_view() -> None:
    views = []
    for order in itertools.permutations(EVENTS):
        view = RoomShopView(bids_max=2)
        for event in [*order, *order[:2]]:  # and some delivered twice
            view.apply(dict(event))
        views.append(view.snapshot())
    assert all(v == views[0] for v in views)
    assert views[0]["pinned"] is None and views[0]["pin_version"] == 2
    auction = views[0]["auction"]
    assert (auction["id"], auction["version"], auction["price_cents"]) == (7, 4, 400)
    assert auction["bids"] == [{"seq": 2}, {"seq": 3}]  # the latest bids_max


def test_a_newer_auction_replaces_the_last_one() -> None:
    view = RoomShopView(bids_max=10)
    for event in EVENTS[:4]:
        view.apply(dict(event))
    view.apply({"type": "auction", "action": "opened", "auction": {"id": 8}, **_state(8, 1, 150)})
    view.apply({"type": "auction", "action": "bid", "bids": [{"seq": 9}], **_state(7, 9, 900)})  # the old one
    auction = view.snapshot()["auction"]
    assert (auction["id"], auction["version"], auction["price_cents"], auction["bids"]) == (8, 1, 150, [])



class JoinerView:
    """What a joining viewer knows of the shop: its snapshot, then the room's events."""

    def __init__(self, auction_id: int) -> None:
        self.snapshot: dict[str, Any] | None = None
        self.pin: tuple[int, int | None] = (0, None)  # (pin_version, product id)
        self.auction = AuctionFold(auction_id)

    def take(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            if event["type"] == "snapshot":
                self.snapshot = event
                self.auction.take_snapshot(event)
                self._pin(event["pin_version"], event["pinned"])
            elif event["type"] == "product_pinned":
                self._pin(event["pin_version"], event["product"])
        self.auction.take(events)

    def _pin(self, version: int, product: dict[str, Any] | None) -> None:
        if version > self.pin[0]:
            self.pin = (version, product["id"] if product else None)


async def _database_shop(node: RunningNode, stream_id: int, auction_id: int) -> tuple[tuple[int, int | None], Any]:
    row = await node.node.pool.fetchrow("SELECT version, product_id FROM stream_pins WHERE stream_id = $1",
                                        stream_id)
    status, auction = await api(node, "GET", f"/api/auctions/{auction_id}")
    assert status == 200, auction
    return (row["version"], row["product_id"]), database_view(auction)


async def _pin(node: RunningNode, token: str, stream_id: int, product_id: int) -> None:
    status, pinned = await api(node, "POST", f"/api/streams/{stream_id}/pin", token, {"product_id": product_id})
    assert status == 200, pinned


async def _joiner_catches_up(node: RunningNode, socket: Any, view: JoinerView, stream_id: int,
                             auction_id: int) -> None:
    """Read the joiner's events until its view is the database's (or fail after CAUGHT_UP_S_MAX)."""
    pin, (state, bids) = await _database_shop(node, stream_id, auction_id)

    def caught_up(got: list[dict[str, Any]]) -> bool:
        view.take(got[len(seen):])
        seen.extend(got[len(seen):])
        return (view.snapshot is not None and view.pin == pin and view.auction.state == state
                and view.auction.history() == bids)

    seen: list[dict[str, Any]] = []
    try:
        await events_until(socket, caught_up, CAUGHT_UP_S_MAX)
    except TimeoutError:
        pytest.fail(f"the joiner never saw the database's shop: pin {view.pin} (database {pin}), auction "
                    f"{view.auction.state} with bids {[b['seq'] for b in view.auction.history()]} (database "
                    f"{state} with {[b['seq'] for b in bids]})")


@pytest.mark.parametrize("held", ["room_moderation", "auctions"])
async def test_a_pin_and_a_bid_landing_while_a_viewer_joins_reach_that_viewer(
        node: RunningNode, servers: Servers, held: str) -> None:
    """The join is held at a table lock while the creator pins another product and a bid is placed. Held at
    `room_moderation` (read as the node opens the room, before it subscribes to the room's events), both are
    committed and announced before the node listens: only a read of the database after subscribing has them.
    Held at `auctions` (read when the node loads the room's shop, after subscribing), the pin is announced while
    the node reads: its event must be folded into the room's view, not dropped as older than the snapshot."""
    room = await room_with_product(node)
    stream_id = room.stream["id"]
    ann = await bidder(node)
    auction = await open_auction(node, room)
    await _pin(node, room.seller["token"], stream_id, room.product["id"])
    status, other = await api(node, "POST", "/api/products", room.seller["token"], {
        "design_id": room.product["design_id"], "base_item_id": "tshirt", "title": "Second tee",
        "price_cents": 2500})
    assert status == 201, other
    viewer = await node.signup()
    blocker = await asyncpg.connect(servers.database_url)
    try:
        async with blocker.transaction():
            await blocker.execute(f"LOCK TABLE {held} IN ACCESS EXCLUSIVE MODE")
            socket = await node.ws(stream_id, viewer["token"])
            await until_a_query_waits_for(blocker, held)
            await _pin(node, room.seller["token"], stream_id, other["id"])
            if held != "auctions":  # a bid needs the auctions table: placed while the join waits only when free
                status, placed = await bid(node, ann["token"], auction["id"], START_CENTS)
                assert status == 200, placed
    finally:
        await blocker.close()
    if held == "auctions":
        status, placed = await bid(node, ann["token"], auction["id"], START_CENTS)
        assert status == 200, placed
    view = JoinerView(auction["id"])
    await _joiner_catches_up(node, socket, view, stream_id, auction["id"])
    assert view.pin[1] == other["id"] and view.auction.state["price_cents"] == START_CENTS
