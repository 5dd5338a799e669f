"""The room's shop view folds events in any order to the same state (commerce/room_shop.py)."""

from __future__ import annotations

import itertools

from commerce.room_shop import CHANGING, RoomShopView


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
