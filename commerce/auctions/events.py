"""The room events of auctions, and the announcer that publishes them in commit order off the bid's path.

Every `auction` event carries the lot's whole changing state (`version`, `state`, `price_cents`, `leader`,
`ends_at` in server ms, `bids_count`, `min_next_cents`, `buy_now_available`, `winner`, `closed_by`), so a client
keeps the event with the highest `version` and never needs to replay: events from two nodes may interleave, the
version orders them. `opened` adds the terms (`auction`); `bid` adds the history entries it made (`bids`);
`outbid` names who lost the lead (`user_id`); `extended` adds `previous_ends_at`; `won` names the winner and the
amount; `closed` and `unsold` add nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from commerce.auctions import rules
from commerce.auctions.bidding import Decided, Lot
from commerce.auctions.rules import Entry, State
from livecore.node import RoomEvents
from livecore.tasks import stop_tasks

log = logging.getLogger("livecore.commerce.auctions")

RoomEvent = tuple[int, dict[str, Any]]


def changing(lot: Lot, state: State) -> dict[str, Any]:
    """The part of an auction that changes, as of `state`."""
    return {
        "auction_id": lot.auction_id, "version": state.version, "state": state.state,
        "price_cents": state.price_cents, "leader": lot.person(state.leader_id), "ends_at": state.ends_at_ms,
        "bids_count": state.bids_count, "min_next_cents": rules.min_next_cents(lot.terms, state),
        "buy_now_available": rules.buy_now_available(lot.terms, state), "winner": lot.person(state.winner_id),
        "closed_by": state.closed_by,
    }


def public_entry(lot: Lot, entry: Entry) -> dict[str, Any]:
    """A history entry as everyone sees it: the bidder's maximum stays private."""
    return {"seq": entry.seq, "bidder": lot.person(entry.bidder_id), "kind": entry.kind,
            "amount_cents": entry.amount_cents, "outcome": entry.outcome, "placed_at": entry.placed_ms}


def _event(action: str, lot: Lot, state: State, **extra: Any) -> dict[str, Any]:
    return {"type": "auction", "action": action, **changing(lot, state), **extra}


def opened(lot: Lot, terms_view: dict[str, Any]) -> dict[str, Any]:
    return _event("opened", lot, lot.state, auction=terms_view)


def after_bids(lot: Lot, decided: list[Decided]) -> list[RoomEvent]:
    """bid, outbid, extended (and closed + won for buy-it-now) for each accepted offer of a batch, in order."""
    events: list[RoomEvent] = []
    for _, decision in decided:
        state = decision.state
        events.append((lot.stream_id, _event("bid", lot, state,
                                             bids=[public_entry(lot, e) for e in decision.entries])))
        if decision.outbid_id is not None:
            events.append((lot.stream_id, _event("outbid", lot, state, user_id=decision.outbid_id)))
        if decision.extended_from_ms is not None:
            events.append((lot.stream_id, _event("extended", lot, state, previous_ends_at=decision.extended_from_ms)))
        if state.state == rules.CLOSED:
            events.extend((lot.stream_id, e) for e in after_close(lot, state))
    return events


def after_close(lot: Lot, state: State) -> list[dict[str, Any]]:
    events = [_event("closed", lot, state)]
    if state.winner_id is None:
        events.append(_event("unsold", lot, state))
    else:
        events.append(_event("won", lot, state, amount_cents=state.price_cents))
    return events


class Announcer:
    """Publishes committed auction events in the order they were committed on this node, a batch of batches per
    Redis round trip. The bids are committed before any of this; events that cannot be published are logged and
    counted, and the next event of the lot (which carries its whole state) repairs every view but the history."""

    def __init__(self, rooms: Callable[[], RoomEvents | None], queue_max: int, on_lost: Callable[[int], None]) -> None:
        self._rooms = rooms
        self._queue: asyncio.Queue[list[RoomEvent]] = asyncio.Queue(queue_max)
        self._on_lost = on_lost
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        await stop_tasks(self._task)

    def offer(self, events: list[RoomEvent]) -> None:
        if not events or self._rooms() is None:
            return
        try:
            self._queue.put_nowait(events)
        except asyncio.QueueFull:
            self._on_lost(len(events))
            log.error("%d auction events are lost: the announcement queue is full", len(events))

    async def _run(self) -> None:
        while True:
            due = [await self._queue.get()]
            due.extend(self._queue.get_nowait() for _ in range(self._queue.qsize()))
            events = [event for batch in due for event in batch]
            rooms = self._rooms()
            try:
                assert rooms is not None
                await rooms.publish_many(events)
            except asyncio.CancelledError:
                raise
            except Exception:
                self._on_lost(len(events))
                log.exception("%d auction events are committed but could not be published", len(events))
