"""Committed means announced: the room events of money, written in the money's own transaction and relayed to
the bus until it takes them.

A gift, a batch of bids or an auction's close writes its room events into `room_event_outbox` in the transaction
that moves the money (migrations/0010). One `EventRelay` per node publishes them: woken by the commit's NOTIFY
(or a poll tick, if a notification was missed), it leases the oldest rows (FOR UPDATE SKIP LOCKED, then a lease of
`event_relay_lease_ms` committed at once, so no transaction stays open while the bus is asked), publishes them
through the room plane with the row id as the event id, and deletes them. If the bus refuses, the lease is given
back and the round is tried again with backoff until the bus is back: at least once. A relay that dies mid-round
leaves its lease to run out, and any relay publishes those rows again. The bus publishes an event id at most once
per room, so a row published again (its first publish went through but the answer or the delete was lost)
reaches no viewer twice.

Several nodes run relays at once. A room's events leave in id order: a relay publishes a row only when no older
row of its room is still waiting outside its own claim (leased by another relay, or committed just now), and
leaves it for a later round otherwise.

On a Redis/Valkey Cluster a shard that is down refuses only its rooms' events: the others in the round go out, and
the refused ones (each room's from its first refused event on) are held for `event_relay_retry_ms_max` so that the
next rounds take other rooms' events instead of stalling behind them.

Not the chat outbox (signaling/outbox.py), the node's in-memory queue of lossy chat on its way to Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from prometheus_client import Counter, Gauge, Histogram
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential, wait_random

from livecore.node import Node
from livecore.tasks import stop_tasks

log = logging.getLogger("livecore.commerce.event_outbox")

CHANNEL = "room_event_outbox"  # the NOTIFY channel of migrations/0010's trigger
LISTEN_CONNECT_S_MAX = 5.0

_WRITE = (
    "INSERT INTO room_event_outbox (room_id, event, created_ms)"
    " SELECT e.room_id, e.event::jsonb, $3 FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY"
    " AS e (room_id, event, n) ORDER BY e.n"
)

# One round trip, its own transaction: lease the oldest rows not leased by a live relay, keeping those with no older
# row of their room still waiting outside the claim (leased by another relay, or committed just now).
_LEASE = """
WITH claimed AS MATERIALIZED (
    SELECT id, room_id FROM room_event_outbox WHERE leased_until_ms <= $2 ORDER BY id LIMIT $1
    FOR UPDATE SKIP LOCKED
), ready AS (
    SELECT c.id FROM claimed c WHERE NOT EXISTS (
        SELECT 1 FROM room_event_outbox o WHERE o.room_id = c.room_id AND o.id < c.id
        AND o.id NOT IN (SELECT id FROM claimed))
), leased AS (
    UPDATE room_event_outbox o SET leased_until_ms = $3 FROM ready WHERE o.id = ready.id
    RETURNING o.id, o.room_id, o.event, o.created_ms
)
SELECT l.id, l.room_id, l.event, l.created_ms, (SELECT count(*) FROM claimed) AS claimed,
       (SELECT count(*) FROM room_event_outbox) AS depth
FROM leased l ORDER BY l.id
"""
_RELEASE = "UPDATE room_event_outbox SET leased_until_ms = 0 WHERE id = ANY($1::bigint[])"
_DELETE = "DELETE FROM room_event_outbox WHERE id = ANY($1::bigint[])"
_HOLD = "UPDATE room_event_outbox SET leased_until_ms = $2 WHERE id = ANY($1::bigint[])"

RoomEvent = tuple[int, dict[str, Any]]
Outgoing = tuple[int, str, dict[str, Any]]  # (room id, event id, event) as the bus takes them


@dataclass(frozen=True)
class OutboxEvent:
    id: int
    room_id: int
    event: dict[str, Any]
    created_ms: int


# Turns claimed rows into what is published: gifts get their combo count here (commerce/gifts.py).
Complete = Callable[[list[OutboxEvent]], Awaitable[list[Outgoing]]]


async def write(db: asyncpg.Connection | asyncpg.Pool, events: list[RoomEvent], now_ms: int) -> None:
    """Add room events to the outbox, in order; call it inside the transaction that commits what they announce."""
    if events:
        await db.execute(_WRITE, [room_id for room_id, _ in events],
                         [orjson.dumps(event).decode() for _, event in events], now_ms)


def as_published(rows: list[OutboxEvent]) -> list[Outgoing]:
    """Rows as they are published: the event id is the row's, the time is the commit's."""
    return [(row.room_id, str(row.id), {"ts": row.created_ms, **row.event}) for row in rows]


class RelayMetrics:
    def __init__(self, registry: Any) -> None:
        self.depth = Gauge("livecore_event_outbox_depth",
                           "Committed room events waiting in the outbox for the bus (all nodes' relays)",
                           registry=registry)
        self.publish_age = Histogram(
            "livecore_event_outbox_publish_age_seconds", "From an event's commit to the bus taking it",
            registry=registry, buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300))
        self.published = Counter("livecore_event_outbox_published", "Outbox events this node's relay published",
                                 registry=registry)
        self.failures = Counter("livecore_event_outbox_relay_failures",
                                "Relay rounds refused by the bus or the database (each is tried again)",
                                registry=registry)


class EventRelay:
    """This node's relay from the outbox to the room bus."""

    def __init__(self, node: Node, complete: Complete) -> None:
        s = node.settings
        self._node = node
        self._complete = complete
        self._batch_max = s.event_relay_batch_max
        self._poll_s = s.event_relay_poll_ms / 1000
        self._publish_s_max = s.event_relay_publish_ms_max / 1000
        self._lease_ms = s.event_relay_lease_ms
        self._hold_ms = s.event_relay_retry_ms_max  # how long events a shard refused wait before a relay tries again
        first_s = s.event_relay_retry_ms_min / 1000
        self._wait = wait_exponential(multiplier=first_s, max=s.event_relay_retry_ms_max / 1000) + wait_random(
            0, first_s)  # jittered, so the relays of many nodes do not all come back at once
        self.metrics = RelayMetrics(node.registry)
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._listen_failed = False
        self._leased_id_max = 0  # the newest row this relay has leased: a notification of none newer is no news
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-relay")

    async def stop(self) -> None:
        await stop_tasks(self._task)
        if self._listener is not None:
            self._listener.terminate()
            self._listener = None

    def wake(self) -> None:
        """Events were just committed on this node: start a round now, without waiting for the notification."""
        self._wake.set()

    async def relay_once(self) -> int:
        """One round: lease, publish and delete the oldest waiting events; how many were claimed (0 also when
        every claimed row had to wait for an older one of its room)."""
        rooms = self._node.rooms
        assert rooms is not None, "the relay runs only on a node with a room plane"
        pool, now_ms = self._node.pool, self._node.clock.now_ms()
        rows = await pool.fetch(_LEASE, self._batch_max, now_ms, now_ms + self._lease_ms)
        self.metrics.depth.set(rows[0]["depth"] if rows else 0)
        if not rows:
            return 0
        taken = [OutboxEvent(r["id"], r["room_id"], orjson.loads(r["event"]), r["created_ms"]) for r in rows]
        ids = [row.id for row in taken]
        self._leased_id_max = max(self._leased_id_max, ids[-1])
        try:
            # A bus that does not answer at all must not hold the round for ever; whether or not a publish cut
            # short went through, the round is tried again and publishes each event once.
            async with asyncio.timeout(self._publish_s_max):
                outcomes = await rooms.publish_once(await self._complete(taken))
        except Exception:
            with contextlib.suppress(Exception):  # else the lease runs out
                await pool.execute(_RELEASE, ids)
            raise
        out = [row for row, outcome in zip(taken, outcomes, strict=True) if not isinstance(outcome, Exception)]
        refused = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
        if refused:
            # A shard of a cluster is down: its rooms' events (each from its first refused one on) wait out a short
            # hold, so the next rounds take other rooms' events meanwhile; a room's later events wait behind them.
            held = [row.id for row, outcome in zip(taken, outcomes, strict=True) if isinstance(outcome, Exception)]
            await pool.execute(_HOLD, held, self._node.clock.now_ms() + self._hold_ms)
            self._refused_some(len(refused), refused[0])
        # Off the events' path: they are out. If this is lost, the lease runs out and the bus refuses them again.
        await pool.execute(_DELETE, [row.id for row in out])
        self.metrics.depth.set(max(0, rows[0]["depth"] - len(out)))
        now_ms = self._node.clock.now_ms()
        for row in out:
            self.metrics.publish_age.observe(max(0, now_ms - row.created_ms) / 1000)
        self.metrics.published.inc(sum(1 for outcome in outcomes if not isinstance(outcome, Exception) and outcome))
        if not out:
            raise refused[0]  # nothing went out: wait and try again, as for a bus that is away
        return rows[0]["claimed"]

    def _refused_some(self, count: int, error: Exception) -> None:
        self.metrics.failures.inc()
        log.warning("%d committed room events wait for their shard of the bus: %r", count, error)

    async def _run(self) -> None:
        while True:
            await self._listen()
            self._wake.clear()  # before the claim: a commit during the round wakes the next one
            claimed = 0
            async for attempt in AsyncRetrying(wait=self._wait, retry=retry_if_exception_type(Exception),
                                               before_sleep=self._refused):
                with attempt:
                    claimed = await self.relay_once()
            if claimed < self._batch_max:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_s)

    def _refused(self, state: RetryCallState) -> None:
        self.metrics.failures.inc()
        error = state.outcome.exception() if state.outcome else None
        level = logging.WARNING if state.attempt_number == 1 else logging.DEBUG
        log.log(level, "committed room events wait for the bus (try %d): %r", state.attempt_number, error)

    async def _listen(self) -> None:
        """Hold a connection that LISTENs for commits that wrote events; without one, the relay polls."""
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            conn = await asyncpg.connect(self._node.settings.database_url, timeout=LISTEN_CONNECT_S_MAX)
            await conn.add_listener(CHANNEL, self._notified)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            if self._listener is not None or not self._listen_failed:
                log.warning("the event relay cannot listen for commits (%r); polling meanwhile", exc)
            self._listener, self._listen_failed = None, True
            return
        self._listener, self._listen_failed = conn, False
        self._wake.set()  # whatever was committed while nobody listened

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if not payload.isdigit() or int(payload) > self._leased_id_max:
            self._wake.set()
