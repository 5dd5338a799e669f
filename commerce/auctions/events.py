"""The room events of auctions: made with the change they announce and committed with it into the outbox
(commerce/event_outbox.py), whose relay publishes them in commit order.

Every `auction` event carries the lot's whole changing state (`version`, `state`, `price_cents`, `leader`,
`ends_at` in server ms, `bids_count`, `min_next_cents`, `buy_now_available`, `winner`, `closed_by`), so a client
keeps the event with the highest `version` and never needs to replay: events from two nodes may interleave, the
version orders them. `opened` adds the terms (`auction`); `bid` adds the history entries (`bids`); `outbid` names
who lost the lead (`user_ids`); `extended` adds `previous_ends_at`; `won` names the winner and the amount;
`closed` and `unsold` add nothing. After the close, `offered` names the bidder offered the lot when the winner did
not pay (`offer`: bidder, amount, expiry), and `won` again names who paid for it if that was not the winner.

Events are made per committed batch of bids, not per bid: a batch is one atomic change of the lot, and in a
bidding storm one `bid` event listing a batch's entries (and one `outbid` naming everyone who lost the lead in
it) costs the room plane a fraction of an event per bid. The version still counts every accepted bid.
"""

from __future__ import annotations

from typing import Any

from commerce.auctions import rules
from commerce.auctions.bidding import Decided, Lot
from commerce.auctions.rules import Entry, State

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
    """The events of one committed batch: `bid` with its entries, `outbid` for those who lost the lead and did
    not win it back, `extended` if the end moved, and `closed` + `won` if buy-it-now ended the auction."""
    if not decided:
        return []
    state = decided[-1][1].state
    made = [_event("bid", lot, state, bids=[public_entry(lot, e) for _, d in decided for e in d.entries])]
    lost = [d.outbid_id for _, d in decided if d.outbid_id is not None and d.outbid_id != state.leader_id]
    if lost:
        made.append(_event("outbid", lot, state, user_ids=list(dict.fromkeys(lost))))
    extended_from = next((d.extended_from_ms for _, d in decided if d.extended_from_ms is not None), None)
    if extended_from is not None and state.ends_at_ms > extended_from:
        made.append(_event("extended", lot, state, previous_ends_at=extended_from))
    if state.state == rules.CLOSED:
        made.extend(after_close(lot, state))
    return [(lot.stream_id, event) for event in made]


def payment_step(action: str, lot: Lot, state: State, **extra: Any) -> dict[str, Any]:
    """A step after the close (`offered`: the lot goes to the next bidder; `won`: they paid for it)."""
    return _event(action, lot, state, **extra)


def after_close(lot: Lot, state: State) -> list[dict[str, Any]]:
    events = [_event("closed", lot, state)]
    if state.winner_id is None:
        events.append(_event("unsold", lot, state))
    else:
        events.append(_event("won", lot, state, amount_cents=state.price_cents))
    return events
