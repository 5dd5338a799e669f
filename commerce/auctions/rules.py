"""The auction rules: pure functions of a lot's terms, its state and the server's clock. No I/O, so the same
code decides every bid on every node, and the tests check it on its own.

A bid has an amount (what the bidder bids now) and may have a maximum (how far the platform may bid for them).
- Nothing is accepted once the auction is closed or the server's clock has reached its end.
- Neither the seller nor the room's moderators can bid.
- The first bid must be at least the start price; every later one must beat the price by the increment.
- The leader does not outbid themselves: a leader's bid can only raise their own maximum (the price stays).
- A challenger whose maximum is above the leader's takes the lead; the price becomes the old leader's maximum plus
  one increment, capped at the new leader's maximum, and never below the amount the challenger bid.
- A challenger whose maximum is at or below the leader's is accepted but outbid at once: the leader's maximum
  answers with the challenger's maximum plus one increment, capped at the leader's maximum. Equal maximums lose
  to the earlier one.
- A bid that moves the price within the anti-sniping window before the end pushes the end to `extension_ms`
  from now, unless the auction is in sudden-death mode.
- Buy-it-now, while the price is below the buy-it-now price, ends the auction at once with the buyer winning.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from commerce.auctions.increments import Increments

OPEN, CLOSED = "open", "closed"

# Accepted outcomes of an offer; anything else is the slug of the problem that refused it.
LEADING, OUTBID, RAISED, BOUGHT = "leading", "outbid", "raised", "bought"
ACCEPTED = frozenset({LEADING, OUTBID, RAISED, BOUGHT})
AUCTION_CLOSED = "auction-closed"
BID_TOO_LOW = "bid-too-low"
ALREADY_LEADING = "already-leading"
SELLER_CANNOT_BID = "seller-cannot-bid"
MODERATOR_CANNOT_BID = "moderator-cannot-bid"
BUY_NOW_UNAVAILABLE = "buy-now-unavailable"
MAX_BELOW_AMOUNT = "max-below-amount"


@dataclass(frozen=True)
class Terms:
    """What the seller set when the auction opened; it never changes."""

    seller_id: int
    start_cents: int
    increments: Increments
    sudden_death: bool
    buy_now_cents: int | None
    snipe_window_ms: int
    extension_ms: int


@dataclass(frozen=True)
class State:
    state: str
    price_cents: int
    leader_id: int | None
    leader_max_cents: int
    ends_at_ms: int
    bids_count: int  # entries in the history; the next entry's seq is bids_count + 1
    version: int  # one more for every accepted offer and for the close
    winner_id: int | None = None
    closed_ms: int | None = None
    closed_by: str | None = None  # "time", "buy_now" or "stream_end"


@dataclass(frozen=True)
class Offer:
    bidder_id: int
    kind: str  # "bid" or "buy_now"
    amount_cents: int = 0
    max_cents: int | None = None


@dataclass(frozen=True)
class Entry:
    """One row of the bid history. `kind`: bid, raise (a leader raised their maximum), proxy (the leader's maximum
    answered a challenger), buy_now. `amount_cents` is the price this entry set (for a raise, the price it left)."""

    seq: int
    bidder_id: int
    kind: str
    amount_cents: int
    max_cents: int | None
    outcome: str
    placed_ms: int


@dataclass(frozen=True)
class Decision:
    outcome: str
    state: State  # after an accepted offer; as it was for a refused one
    entries: tuple[Entry, ...] = ()
    outbid_id: int | None = None  # the leader who lost the lead
    extended_from_ms: int | None = None  # the end before this offer pushed it

    @property
    def accepted(self) -> bool:
        return self.outcome in ACCEPTED


def opening_state(terms: Terms, opened_ms: int, duration_ms: int) -> State:
    return State(OPEN, terms.start_cents, None, 0, opened_ms + duration_ms, 0, 1)


def min_next_cents(terms: Terms, state: State) -> int:
    """The smallest amount the next bid from a challenger may have."""
    if state.leader_id is None:
        return terms.start_cents
    return state.price_cents + terms.increments.step(state.price_cents)


def is_open(state: State, now_ms: int) -> bool:
    return state.state == OPEN and now_ms < state.ends_at_ms


def buy_now_available(terms: Terms, state: State) -> bool:
    return state.state == OPEN and terms.buy_now_cents is not None and state.price_cents < terms.buy_now_cents


def decide(terms: Terms, state: State, offer: Offer, now_ms: int, moderators: frozenset[int] = frozenset()
           ) -> Decision:
    """What `offer` does to `state` at `now_ms` by the server's clock; `moderators` are the room's."""
    if not is_open(state, now_ms):
        return Decision(AUCTION_CLOSED, state)
    if offer.bidder_id == terms.seller_id:
        return Decision(SELLER_CANNOT_BID, state)
    if offer.bidder_id in moderators:
        return Decision(MODERATOR_CANNOT_BID, state)
    if offer.kind == "buy_now":
        return _buy_now(terms, state, offer, now_ms)
    if offer.max_cents is not None and offer.max_cents < offer.amount_cents:
        return Decision(MAX_BELOW_AMOUNT, state)
    ceiling = max(offer.amount_cents, offer.max_cents or 0)
    minimum = min_next_cents(terms, state)
    if offer.bidder_id == state.leader_id:
        if ceiling <= state.leader_max_cents or ceiling < minimum:
            return Decision(ALREADY_LEADING, state)
        entry = Entry(state.bids_count + 1, offer.bidder_id, "raise", state.price_cents, ceiling, RAISED, now_ms)
        return Decision(RAISED, replace(state, leader_max_cents=ceiling, bids_count=entry.seq,
                                        version=state.version + 1), (entry,))
    if offer.amount_cents < minimum:
        return Decision(BID_TOO_LOW, state)
    seq = state.bids_count + 1
    step = terms.increments.step
    if state.leader_id is None or ceiling > state.leader_max_cents:
        runner_up = state.leader_max_cents
        price = offer.amount_cents if state.leader_id is None else \
            max(offer.amount_cents, min(runner_up + step(runner_up), ceiling))
        entries: tuple[Entry, ...] = (Entry(seq, offer.bidder_id, "bid", price, ceiling, LEADING, now_ms),)
        after = replace(state, price_cents=price, leader_id=offer.bidder_id, leader_max_cents=ceiling)
        outcome, outbid_id = LEADING, state.leader_id
    else:
        assert state.leader_id is not None
        price = min(ceiling + step(ceiling), state.leader_max_cents)
        entries = (Entry(seq, offer.bidder_id, "bid", offer.amount_cents, ceiling, OUTBID, now_ms),
                   Entry(seq + 1, state.leader_id, "proxy", price, None, LEADING, now_ms))
        after = replace(state, price_cents=price)
        outcome, outbid_id = OUTBID, None
    after = replace(after, bids_count=state.bids_count + len(entries), version=state.version + 1)
    extended_from = None
    if not terms.sudden_death and state.ends_at_ms - now_ms <= terms.snipe_window_ms \
            and now_ms + terms.extension_ms > state.ends_at_ms:
        extended_from = state.ends_at_ms
        after = replace(after, ends_at_ms=now_ms + terms.extension_ms)
    return Decision(outcome, after, entries, outbid_id, extended_from)


def _buy_now(terms: Terms, state: State, offer: Offer, now_ms: int) -> Decision:
    if not buy_now_available(terms, state):
        return Decision(BUY_NOW_UNAVAILABLE, state)
    assert terms.buy_now_cents is not None
    price = terms.buy_now_cents
    entry = Entry(state.bids_count + 1, offer.bidder_id, "buy_now", price, None, BOUGHT, now_ms)
    after = replace(state, state=CLOSED, price_cents=price, leader_id=offer.bidder_id, leader_max_cents=price,
                    ends_at_ms=now_ms, bids_count=entry.seq, version=state.version + 1, winner_id=offer.bidder_id,
                    closed_ms=now_ms, closed_by="buy_now")
    outbid = state.leader_id if state.leader_id != offer.bidder_id else None
    return Decision(BOUGHT, after, (entry,), outbid)


def may_be_overturned(decision: Decision) -> bool:
    """Whether a refusal made on a copy of the state that may be stale could be wrong: the end may have been
    extended, or the refused leader may have lost the lead. Every other refusal stands whatever was committed
    since: prices only rise, a closed auction stays closed, and sellers and moderators stay what they are."""
    if decision.outcome == AUCTION_CLOSED:
        return decision.state.state == OPEN
    return decision.outcome == ALREADY_LEADING


def close(state: State, now_ms: int) -> State | None:
    """The closed state once the clock has reached the end; None while the auction runs (or if it is closed)."""
    if state.state != OPEN or now_ms < state.ends_at_ms:
        return None
    return replace(state, state=CLOSED, winner_id=state.leader_id, closed_ms=now_ms, closed_by="time",
                   version=state.version + 1)
