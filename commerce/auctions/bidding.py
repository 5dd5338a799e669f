"""Bids on a lot: decided in arrival order, committed in batches, one round trip per batch.

A node keeps a copy of each open auction it takes bids for (a `Lot`): the terms, the state as last committed, the
room's moderators and the idempotency keys of recent bids. Bids for a lot wait in one bounded queue; one task at
a time takes all that have gathered (up to `auction_bid_batch_max`), decides them in order with the rules at one
instant of the node's clock, and commits what they changed with one statement that names the version it decided
from. If anything changed the auction meanwhile (another node's bids, the close), that statement changes nothing:
the copy is reloaded and the batch decided again. The batch's room events are written to the outbox by the same
statement (commerce/event_outbox.py). A refusal that no newer state could overturn (below the
increment, a closed auction, the seller) needs no round trip; the others are checked against the version first.
Nothing waits on purpose: an idle lot commits a lone bid at once, a busy one gathers more per batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from commerce.auctions import increments, rules
from commerce.auctions.rules import Decision, Entry, State
from livecore.clock import Clock
from livecore.config import Settings
from livecore.http import Problem
from livecore.outage import unreachable_part
from livecore.tasks import stop_tasks

log = logging.getLogger("livecore.commerce.bidding")

_LOAD = """
SELECT a.*, (SELECT display_name FROM accounts WHERE id = a.leader_id) AS leader_name,
       (SELECT coalesce(json_agg(k ORDER BY k.seq), '[]') FROM (
           SELECT seq, bidder_id, kind, amount_cents, max_cents, outcome, placed_ms, idempotency_key
           FROM auction_bids b WHERE b.auction_id = a.id AND b.seq > $2 AND b.idempotency_key IS NOT NULL
           ORDER BY b.seq DESC LIMIT $3) k) AS keyed
FROM auctions a WHERE a.id = $1
"""

_COMMIT = """
WITH lot AS (
    UPDATE auctions SET state = $3, price_cents = $4, leader_id = $5, leader_max_cents = $6, ends_at_ms = $7,
        bids_count = $8, version = $9, winner_id = $10, closed_ms = $11, closed_by = $12
    WHERE id = $1 AND version = $2
    RETURNING id, product_id, variant_id
), entries AS (
    INSERT INTO auction_bids (auction_id, seq, bidder_id, kind, amount_cents, max_cents, outcome, placed_ms,
                              idempotency_key)
    SELECT lot.id, e.seq, e.bidder_id, e.kind, e.amount_cents, e.max_cents, e.outcome, $13, e.idempotency_key
    FROM lot, unnest($14::int[], $15::bigint[], $16::text[], $17::bigint[], $18::bigint[], $19::text[],
                     $20::text[]) AS e (seq, bidder_id, kind, amount_cents, max_cents, outcome, idempotency_key)
), won AS (
    INSERT INTO auction_wins (auction_id, winner_id, product_id, variant_id, amount_cents, won_ms, how)
    SELECT lot.id, $10, lot.product_id, lot.variant_id, $4, $11, $12 FROM lot WHERE $3 = 'closed'
), announced AS (
    INSERT INTO room_event_outbox (room_id, event, created_ms)
    SELECT $21, e.event::jsonb, $13 FROM lot, unnest($22::text[]) WITH ORDINALITY AS e (event, n) ORDER BY e.n
)
SELECT count(*) FROM lot
"""

Moderators = Callable[[int], Awaitable[frozenset[int]]]
RoomEvent = tuple[int, dict[str, Any]]


@dataclass(frozen=True)
class BidRequest:
    offer: rules.Offer
    idempotency_key: str
    bidder_name: str


@dataclass(frozen=True)
class BidResult:
    outcome: str  # an accepted outcome of rules.py, or the slug of the refusal
    entry: Entry | None  # the bidder's own history entry, when accepted
    state: State  # the lot's state right after this bid was decided
    replayed: bool = False  # a retry of an accepted bid: its first result


Decided = tuple[BidRequest, Decision]
_Waiting = tuple[BidRequest, "asyncio.Future[BidResult]"]


@dataclass(eq=False)
class Lot:
    """This node's copy of one auction and the bids waiting for it."""

    auction_id: int
    stream_id: int
    product_id: int
    variant_id: str
    terms: rules.Terms
    state: State
    moderators: frozenset[int]
    moderators_read_ms: int
    names: dict[int, str]
    keys: OrderedDict[tuple[int, str], Entry]
    queue: deque[_Waiting] = field(default_factory=deque)
    draining: asyncio.Task[None] | None = None

    def leader(self) -> dict[str, Any] | None:
        return self.person(self.state.leader_id)

    def person(self, user_id: int | None) -> dict[str, Any] | None:
        return None if user_id is None else {"id": user_id, "name": self.names.get(user_id, "")}


def terms_of(row: asyncpg.Record) -> rules.Terms:
    table = increments.stored(row["increments_name"], orjson.loads(row["increments"]))
    return rules.Terms(row["seller_id"], row["start_cents"], table, row["sudden_death"], row["buy_now_cents"],
                       row["snipe_window_ms"], row["extension_ms"])


def state_of(row: asyncpg.Record) -> State:
    return State(row["state"], row["price_cents"], row["leader_id"], row["leader_max_cents"], row["ends_at_ms"],
                 row["bids_count"], row["version"], row["winner_id"], row["closed_ms"], row["closed_by"])


class Bidding:
    def __init__(
        self, pool: asyncpg.Pool, clock: Clock, settings: Settings, moderators: Moderators,
        events_of: Callable[[Lot, list[Decided]], list[RoomEvent]], on_batch: Callable[[int, int], None],
        on_committed: Callable[[], None],
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._settings = settings
        self._moderators = moderators
        self._events_of = events_of  # a batch's room events, committed with it into the outbox
        self._on_batch = on_batch  # (bids decided, commit attempts), for the metrics
        self._on_committed = on_committed  # wakes the outbox relay at once
        self.lots: OrderedDict[int, Lot] = OrderedDict()

    async def lot(self, auction_id: int) -> Lot:
        """This node's copy of an auction (read on first use); 404 when there is no such auction."""
        lot = self.lots.get(auction_id)
        if lot is None:
            lot = await self._load(auction_id)
            self.lots[auction_id] = lot
            self._forget_idle()
        else:
            self.lots.move_to_end(auction_id)
            now_ms = self._clock.now_ms()
            if lot.state.state == rules.OPEN and now_ms - lot.moderators_read_ms > self._settings.account_cache_ms:
                lot.moderators, lot.moderators_read_ms = await self._moderators(lot.stream_id), now_ms
        return lot

    async def submit(self, lot: Lot, request: BidRequest) -> BidResult:
        """Queue a bid and wait for its batch; 503 `bids-busy` when the lot's queue on this node is full."""
        limit = self._settings.auction_bid_queue_max
        if len(lot.queue) >= limit:
            raise Problem(503, "bids-busy", "too many bids are waiting on this node; bid again shortly",
                          rule="auction_bid_queue_max", limit_value=limit)
        waiting: asyncio.Future[BidResult] = asyncio.get_running_loop().create_future()
        lot.queue.append((request, waiting))
        lot.names[request.offer.bidder_id] = request.bidder_name
        if lot.draining is None:
            lot.draining = asyncio.create_task(self._drain(lot))
        return await asyncio.shield(waiting)  # a caller that leaves does not take the bid out of its batch

    def take_state(self, auction_id: int, state: State, names: dict[int, str]) -> None:
        """A newer state committed elsewhere on this node (the close): bring the copy up to it."""
        lot = self.lots.get(auction_id)
        if lot is not None and state.version > lot.state.version:
            lot.state = state
            lot.names.update(names)

    async def stop(self) -> None:
        lots = list(self.lots.values())
        await stop_tasks(*(lot.draining for lot in lots))
        for lot in lots:
            _fail(list(lot.queue), _stopping())
            lot.queue.clear()

    async def _drain(self, lot: Lot) -> None:
        try:
            while lot.queue:
                batch = [lot.queue.popleft() for _ in range(min(len(lot.queue), self._settings.auction_bid_batch_max))]
                try:
                    await self._settle(lot, batch)
                except asyncio.CancelledError:
                    _fail(batch, _stopping())
                    raise
                except Exception as exc:
                    if unreachable_part(exc):  # the bidders' own paths answer it as any outage: 503 unavailable
                        log.warning("a batch of %d bids on auction %d failed: %r", len(batch), lot.auction_id, exc)
                        _fail(batch, exc)
                        continue
                    log.exception("a batch of %d bids on auction %d failed", len(batch), lot.auction_id)
                    _fail(batch, exc if isinstance(exc, Problem) else
                          Problem(503, "auction-unavailable", "the bid could not be committed; bid again"))
        finally:
            lot.draining = None

    async def _settle(self, lot: Lot, batch: list[_Waiting]) -> None:
        requests = [request for request, _ in batch]
        attempts = 0
        while attempts < self._settings.auction_commit_attempts_max:
            attempts += 1
            now_ms, read_version = self._clock.now_ms(), lot.state.version
            plan = _Plan.make(lot, requests, now_ms)
            try:
                if plan.entries:
                    current = await self._commit(lot, plan, read_version, now_ms)
                elif plan.must_confirm:
                    current = await self._pool.fetchval("SELECT version FROM auctions WHERE id = $1",
                                                        lot.auction_id) == read_version
                else:
                    current = True
            except asyncpg.UniqueViolationError:  # a retry of a bid older than the keys this node remembers
                await self._recall_keys(lot, requests)
                continue
            if current:
                break
            await self._reload(lot)
        else:
            raise Problem(503, "auction-busy", "the auction kept changing while this bid was decided; bid again",
                          rule="auction_commit_attempts_max", limit_value=self._settings.auction_commit_attempts_max)
        self._on_batch(len(batch), attempts)
        if plan.decided:
            self._on_committed()
        if plan.state.version >= lot.state.version:  # the sweep may have closed it meanwhile: keep the newer
            lot.state = plan.state
        for request, decision in plan.decided:
            lot.keys[(request.offer.bidder_id, request.idempotency_key)] = decision.entries[0]
        while len(lot.keys) > self._settings.auction_keys_cached_max:
            lot.keys.popitem(last=False)
        for (_, waiting), result in zip(batch, plan.results(), strict=True):
            if not waiting.done():
                waiting.set_result(result)

    async def _commit(self, lot: Lot, plan: _Plan, read_version: int, now_ms: int) -> bool:
        s, entries, keys = plan.state, plan.entries, plan.entry_keys
        committed = await self._pool.fetchval(
            _COMMIT, lot.auction_id, read_version, s.state, s.price_cents, s.leader_id, s.leader_max_cents,
            s.ends_at_ms, s.bids_count, s.version, s.winner_id, s.closed_ms, s.closed_by, now_ms,
            [e.seq for e in entries], [e.bidder_id for e in entries], [e.kind for e in entries],
            [e.amount_cents for e in entries], [e.max_cents for e in entries], [e.outcome for e in entries], keys,
            lot.stream_id, [orjson.dumps(event).decode() for _, event in self._events_of(lot, plan.decided)],
        )
        return committed == 1

    async def _load(self, auction_id: int) -> Lot:
        row = await self._pool.fetchrow(_LOAD, auction_id, 0, self._settings.auction_keys_cached_max)
        if row is None:
            raise Problem(404, "auction-not-found", f"there is no auction {auction_id}")
        lot = Lot(auction_id, row["stream_id"], row["product_id"], row["variant_id"], terms_of(row), state_of(row),
                  await self._moderators(row["stream_id"]), self._clock.now_ms(), {}, OrderedDict())
        _take(lot, row)
        return lot

    async def _reload(self, lot: Lot) -> None:
        """Catch up with what others committed: the state, the leader's name, the keys of the new bids."""
        row = await self._pool.fetchrow(_LOAD, lot.auction_id, lot.state.bids_count,
                                        self._settings.auction_keys_cached_max)
        lot.state = state_of(row)
        lot.moderators, lot.moderators_read_ms = await self._moderators(lot.stream_id), self._clock.now_ms()
        _take(lot, row)

    async def _recall_keys(self, lot: Lot, requests: list[BidRequest]) -> None:
        rows = await self._pool.fetch(
            "SELECT b.* FROM auction_bids b JOIN unnest($2::bigint[], $3::text[]) AS k (bidder_id, idempotency_key)"
            " USING (bidder_id, idempotency_key) WHERE b.auction_id = $1", lot.auction_id,
            [r.offer.bidder_id for r in requests], [r.idempotency_key for r in requests])
        for k in rows:
            lot.keys[(k["bidder_id"], k["idempotency_key"])] = Entry(
                k["seq"], k["bidder_id"], k["kind"], k["amount_cents"], k["max_cents"], k["outcome"], k["placed_ms"])

    def _forget_idle(self) -> None:
        while len(self.lots) > self._settings.auctions_cached_max:
            idle = next((i for i, lot in self.lots.items() if not lot.queue and lot.draining is None), None)
            if idle is None:
                return
            del self.lots[idle]


def _take(lot: Lot, row: asyncpg.Record) -> None:
    if row["leader_id"] is not None:
        lot.names[row["leader_id"]] = row["leader_name"]
    for k in orjson.loads(row["keyed"]):
        lot.keys[(k["bidder_id"], k["idempotency_key"])] = Entry(
            k["seq"], k["bidder_id"], k["kind"], k["amount_cents"], k["max_cents"], k["outcome"], k["placed_ms"])


class _Plan:
    """A batch decided in order against the lot's copy: one outcome per request, the entries to commit."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.outcomes: list[BidResult | int | Decision] = []  # a replay, the index of an earlier request, a decision
        self.decided: list[Decided] = []
        self.entries: list[Entry] = []
        self.entry_keys: list[str | None] = []
        self.must_confirm = False

    @classmethod
    def make(cls, lot: Lot, requests: list[BidRequest], now_ms: int) -> _Plan:
        plan = cls(lot.state)
        accepted_at: dict[tuple[int, str], int] = {}
        for index, request in enumerate(requests):
            key = (request.offer.bidder_id, request.idempotency_key)
            first = lot.keys.get(key)
            if first is not None:
                plan.outcomes.append(BidResult(first.outcome, first, lot.state, replayed=True))
                continue
            if key in accepted_at:
                plan.outcomes.append(accepted_at[key])
                continue
            decision = rules.decide(lot.terms, plan.state, request.offer, now_ms, lot.moderators)
            plan.outcomes.append(decision)
            if decision.accepted:
                accepted_at[key] = index
                plan.state = decision.state
                plan.decided.append((request, decision))
                plan.entries.extend(decision.entries)
                plan.entry_keys.extend([request.idempotency_key] + [None] * (len(decision.entries) - 1))
            elif rules.may_be_overturned(decision):
                plan.must_confirm = True
        return plan

    def results(self) -> list[BidResult]:
        made: list[BidResult] = []
        for outcome in self.outcomes:
            if isinstance(outcome, BidResult):
                made.append(outcome)
            elif isinstance(outcome, int):
                made.append(BidResult(made[outcome].outcome, made[outcome].entry, made[outcome].state, True))
            else:
                made.append(BidResult(outcome.outcome, outcome.entries[0] if outcome.accepted else None,
                                      outcome.state))
        return made


def _stopping() -> Problem:
    return Problem(503, "node-stopping", "this node is stopping; bid again")


def _fail(batch: list[_Waiting], exc: BaseException) -> None:
    for _, waiting in batch:
        if not waiting.done():
            waiting.set_exception(exc)
