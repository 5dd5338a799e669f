"""What a room's join snapshot shows of the shop: the pinned product and the current auction with its latest bids.

Each node keeps one `RoomShopView` per room it has viewers in, folded from the room's own `product_pinned` and
`auction` events and from PostgreSQL when the node opens the room. The fold is order-free (the highest pin
version and auction version win, bids are merged by their number), so events that arrive before the load, twice,
or from two nodes out of order all end in the same view.
"""

from __future__ import annotations

from typing import Any

EARLY_EVENTS_MAX = 1000  # a newer auction's events kept while its `opened` is on its way (seen only in races)

# What an auction event carries of the lot's changing state (commerce/auctions/events.py makes them).
CHANGING = ("version", "state", "price_cents", "leader", "ends_at", "bids_count", "min_next_cents",
            "buy_now_available", "winner", "closed_by")


class RoomShopView:
    def __init__(self, bids_max: int) -> None:
        self._bids_max = bids_max
        self._pin: dict[str, Any] | None = None
        self._auction: dict[str, Any] | None = None
        self._bids: dict[int, dict[str, Any]] = {}
        self._early: list[dict[str, Any]] = []  # a newer auction's events that overtook its `opened` (bounded)

    def apply(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "product_pinned":
            if self._pin is None or event["pin_version"] > self._pin["pin_version"]:
                self._pin = {"product": event["product"], "pin_version": event["pin_version"]}
        elif kind == "auction":
            self._apply_auction(event)

    def take_auction(self, view: dict[str, Any]) -> None:
        """An auction as `GET /api/auctions/{id}` shows it (read from PostgreSQL)."""
        terms = {k: v for k, v in view.items() if k not in (*CHANGING, "bids", "server_now", "order_id")}
        self._apply_auction({"type": "auction", "action": "opened", "auction_id": view["id"], "auction": terms,
                             "bids": view["bids"], **{k: view[k] for k in CHANGING}})

    def _apply_auction(self, event: dict[str, Any]) -> None:
        current = self._auction
        newer = current is None or event["auction_id"] > current["id"]
        if event["action"] == "opened" and newer:
            current = self._auction = {**event["auction"], **{k: event[k] for k in CHANGING}}
            self._bids = {}
            early, self._early = [e for e in self._early if e["auction_id"] == event["auction_id"]], []
            for overtaking in early:
                self._apply_auction(overtaking)
        elif newer:  # published by another node before `opened` reached this one: keep it for then
            if len(self._early) < EARLY_EVENTS_MAX:
                self._early.append(event)
            return
        if current is None or event["auction_id"] != current["id"]:
            return  # an older auction's event
        if event["version"] > current["version"]:
            current.update({k: event[k] for k in CHANGING})
        for entry in event.get("bids", ()):
            self._bids[entry["seq"]] = entry
        if len(self._bids) > self._bids_max:
            for seq in sorted(self._bids)[:len(self._bids) - self._bids_max]:
                del self._bids[seq]

    def snapshot(self) -> dict[str, Any]:
        auction = None
        if self._auction is not None:
            auction = {**self._auction, "bids": [self._bids[seq] for seq in sorted(self._bids)]}
        return {"pinned": self._pin["product"] if self._pin else None,
                "pin_version": self._pin["pin_version"] if self._pin else 0, "auction": auction}
