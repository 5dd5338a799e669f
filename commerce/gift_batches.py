"""Gifts committed in batches: the node's gift requests wait in one bounded queue and a few workers each take
what has gathered (up to `gift_batch_max`) and post it with one call of `gift_post_batch` (migrations/0003).

Nothing waits on purpose: an idle node commits a lone gift at once, and a busy one batches more because gifts
gather while the previous batch is in flight. Each gift is still its own journal transaction with its own outcome,
and its room event is written to the outbox by the same commit (commerce/event_outbox.py).
The platform accounts and the creator's held-earnings shard are chosen per batch, so concurrent batches lock
different rows.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass

import asyncpg
import orjson
from prometheus_client import CollectorRegistry, Histogram

from commerce import ledger
from commerce.catalogue import Gift
from commerce.ledger import Accounts
from commerce.rules import utc_day
from livecore.clock import Clock
from livecore.http import Problem
from livecore.tasks import stop_tasks

log = logging.getLogger("livecore.commerce.gift_batches")

_POST_BATCH = (
    "SELECT outcome, tx_id, coins_left FROM gift_post_batch("
    "$1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[],"
    " $9::bigint[], $10, $11, $12, $13, $14, $15, $16::text[])"
)


@dataclass(frozen=True)
class GiftOrder:
    """One gift, priced and checked, ready to post."""

    external_id: str
    sender_id: int
    sender_name: str
    stream_id: int
    creator_id: int
    gift: Gift
    count: int
    coins: int
    creator_diamonds: int
    platform_diamonds: int
    details: dict[str, object]


@dataclass(frozen=True)
class Posted:
    outcome: str  # see migrations/0003_gift_batches.sql
    transaction_id: int | None
    coins_balance: int | None


_Waiting = tuple[GiftOrder, "asyncio.Future[Posted]"]


class GiftBatcher:
    def __init__(
        self, pool: asyncpg.Pool, accounts: Accounts, clock: Clock, registry: CollectorRegistry, *, batch_max: int,
        queue_max: int, workers: int, spend_max_coins: int, on_committed: Callable[[], None],
    ) -> None:
        self._pool = pool
        self._accounts = accounts
        self._clock = clock
        self._batch_max = batch_max
        self._spend_max_coins = spend_max_coins
        self._queue: asyncio.Queue[_Waiting] = asyncio.Queue(queue_max)
        self._workers_n = workers
        self._workers: list[asyncio.Task[None]] = []
        self._on_committed = on_committed  # wakes the outbox relay at once
        self.batch_sizes = Histogram("livecore_gift_batch_gifts", "Gifts per committed batch", registry=registry,
                                     buckets=(1, 2, 4, 8, 16, 32, 64, 128))

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work()) for _ in range(self._workers_n)]

    async def stop(self) -> None:
        await stop_tasks(*self._workers)
        left = [self._queue.get_nowait() for _ in range(self._queue.qsize())]
        _fail(left, Problem(503, "node-stopping", "this node is stopping; send the gift again"))

    async def post(self, order: GiftOrder) -> Posted:
        """Queue a gift and wait for its batch to commit; 503 when the node's queue is full."""
        waiting: asyncio.Future[Posted] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((order, waiting))
        except asyncio.QueueFull:
            raise Problem(503, "gifts-busy", "too many gifts are waiting on this node; send it again shortly",
                          rule="gift_queue_max", limit_value=self._queue.maxsize) from None
        return await asyncio.shield(waiting)  # a caller that leaves does not take the gift out of its batch

    async def _work(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._settle(batch)
            except asyncio.CancelledError:
                _fail(batch, Problem(503, "node-stopping", "this node is stopping; send the gift again"))
                raise

    async def _settle(self, batch: list[_Waiting]) -> None:
        """Commit a batch and answer its gifts. A batch the database refuses as a whole is retried one gift at a
        time, so one gift that breaks a ledger rule cannot take the others down with it."""
        now_ms = self._clock.now_ms()
        try:
            results = await self._commit([order for order, _ in batch], now_ms)
        except Exception as exc:
            if len(batch) > 1:
                log.warning("a batch of %d gifts was refused (%r); committing them one by one", len(batch), exc)
                for alone in batch:
                    await self._settle([alone])
                return
            log.exception("gift %s could not be committed", batch[0][0].external_id)
            _fail(batch, exc)
            return
        self.batch_sizes.observe(len(batch))
        self._on_committed()
        for (_, waiting), posted in zip(batch, results, strict=True):
            if not waiting.done():
                waiting.set_result(posted)

    async def _commit(self, orders: list[GiftOrder], now_ms: int) -> list[Posted]:
        accounts, spread = self._accounts, secrets.token_hex(4)
        wallets = [await accounts.user(o.sender_id, ledger.COINS) for o in orders]
        held = [await accounts.user_shard(o.creator_id, ledger.EARNINGS_HELD, spread) for o in orders]
        rows = await self._pool.fetch(
            _POST_BATCH,
            [o.external_id for o in orders], [o.sender_id for o in orders], [o.stream_id for o in orders],
            [o.coins for o in orders], [orjson.dumps(o.details).decode() for o in orders], wallets, held,
            [o.creator_diamonds for o in orders], [o.platform_diamonds for o in orders],
            await accounts.platform(ledger.COIN_ISSUANCE, spread),
            await accounts.platform(ledger.DIAMOND_ISSUANCE, spread),
            await accounts.platform(ledger.PLATFORM_REVENUE, spread),
            now_ms, utc_day(now_ms), self._spend_max_coins, [orjson.dumps(room_event(o)).decode() for o in orders],
        )
        return [Posted(r["outcome"], r["tx_id"], r["coins_left"]) for r in rows]


def room_event(order: GiftOrder) -> dict[str, object]:
    """A gift's room event as the outbox keeps it: the commit adds its transaction id, the relay its combo."""
    return {"type": "gift", "user": {"id": order.sender_id, "name": order.sender_name}, "gift": asdict(order.gift),
            "count": order.count}


def _fail(batch: list[_Waiting], exc: BaseException) -> None:
    for _, waiting in batch:
        if not waiting.done():
            waiting.set_exception(exc)
