"""The print-on-demand order lifecycle as the simulator plays it.

draft --confirm--> pending --(production_start_s)--> in_production --(production_s)--> shipped (with tracking)
--(transit_s)--> delivered. Off the happy path: on_hold (and back), failed (randomly at the start of production
when a failure rate is set, or when asked), cancelled (before it ships), returned (after it ships).
Each change raises the order's `seq` by one and is announced by one callback.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass

from fulfilment_sim.store import Order

HAPPY_PATH = ("pending", "in_production", "shipped", "delivered")
CANCELLABLE = frozenset({"draft", "pending", "on_hold", "in_production"})
HOLDABLE = frozenset({"pending", "in_production"})
FAILABLE = frozenset({"pending", "in_production", "on_hold"})
RETURNABLE = frozenset({"shipped", "delivered"})
FAILURE_REASONS = ("the print file was rejected at pre-press", "the blank garment is out of stock",
                   "a misprint was caught at quality control")
CARRIERS = ("USPS", "UPS", "DHL", "Royal Mail", "DPD")


class NotAllowed(Exception):
    """The order is not in a state that allows this change."""


@dataclass(frozen=True)
class Delays:
    """How long each step takes, in simulated seconds."""

    production_start_s: int
    production_s: int
    transit_s: int

    def after(self, status: str) -> int | None:
        return {"pending": self.production_start_s, "in_production": self.production_s,
                "shipped": self.transit_s}.get(status)


def move(order: Order, status: str, now_ms: int, delays: Delays, reason: str | None = None) -> None:
    """Put `order` in `status` now (in simulated time), scheduling its next step on the happy path."""
    order.status = status
    order.seq += 1
    order.reason = reason
    after = delays.after(status)
    order.due_ms = None if after is None else now_ms + after * 1000
    if status == "shipped":
        number = secrets.token_hex(6).upper()
        carrier = CARRIERS[int(number, 16) % len(CARRIERS)]
        order.tracking = {"carrier": carrier, "number": number,
                          "url": f"https://tracking.example/{carrier.replace(' ', '').lower()}/{number}"}
    entry: dict[str, object] = {"status": status, "at_ms": now_ms}
    if reason:
        entry["reason"] = reason
    order.history.append(entry)


def next_step(order: Order, now_ms: int, delays: Delays, failure_percent: int, rng: random.Random) -> None:
    """The step that was due: the next state on the happy path, or a failure when production starts."""
    if order.status == "pending" and rng.randrange(100) < failure_percent:
        move(order, "failed", now_ms, delays, rng.choice(FAILURE_REASONS))
        return
    following = HAPPY_PATH[HAPPY_PATH.index(order.status) + 1]
    move(order, following, now_ms, delays)


def confirm(order: Order, now_ms: int, delays: Delays) -> bool:
    """Send a draft to production; False when it was confirmed already (a retry)."""
    if order.status != "draft":
        return False
    move(order, "pending", now_ms, delays)
    return True


def cancel(order: Order, now_ms: int, delays: Delays, reason: str) -> None:
    if order.status == "cancelled":
        return
    if order.status not in CANCELLABLE:
        raise NotAllowed(f"an order that is {order.status} cannot be cancelled")
    move(order, "cancelled", now_ms, delays, reason)


def hold(order: Order, now_ms: int, delays: Delays, reason: str) -> None:
    if order.status not in HOLDABLE:
        raise NotAllowed(f"an order that is {order.status} cannot be put on hold")
    held_from = order.status
    move(order, "on_hold", now_ms, delays, reason)
    order.held_from = held_from


def release(order: Order, now_ms: int, delays: Delays) -> None:
    if order.status != "on_hold" or order.held_from is None:
        raise NotAllowed(f"an order that is {order.status} is not on hold")
    back_to, order.held_from = order.held_from, None
    move(order, back_to, now_ms, delays)


def fail(order: Order, now_ms: int, delays: Delays, reason: str) -> None:
    if order.status not in FAILABLE:
        raise NotAllowed(f"an order that is {order.status} cannot fail any more")
    move(order, "failed", now_ms, delays, reason)


def give_back(order: Order, now_ms: int, delays: Delays, reason: str) -> None:
    """The parcel came back (refused, undeliverable, or returned by the customer)."""
    if order.status not in RETURNABLE:
        raise NotAllowed(f"an order that is {order.status} has not shipped; it cannot come back")
    move(order, "returned", now_ms, delays, reason)
