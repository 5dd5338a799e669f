"""Group commit for ad events: every feed page sends its ad events about once a second, so a node serving 500 ads a
second receives about 500 small batches a second. Written one transaction each, they cost PostgreSQL (and this
node's loop) six round trips apiece, fell behind on a busy machine and queued for the pool's connections, with the
inventory's refreshes and the spend postings waiting behind them. Here the batches that arrive while one write is
under way are written together by the next (`events.record_many`: six statements whatever their number), one
write at a time; each request is answered when the write holding its batch commits, so nothing is answered before it
is stored. What waits is bounded: past `pending_events_max` a request is refused with a 503 the page retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import asyncpg
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from ads import events
from livecore.http import Problem

log = logging.getLogger("livecore.ads")
# A write that lost a deadlock or serialization race (another node's write touching the same rows) is made again, up
# to this many times in all, before its requests get the error.
WRITE_ATTEMPTS_MAX = 3
_LOST_RACE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
RETRY_AFTER_S = 1


class EventRecorder:
    def __init__(self, pool: asyncpg.Pool, pending_events_max: int, write_events_max: int,
                 on_write: Callable[[], None] = lambda: None) -> None:
        self.pool = pool
        self.pending_events_max = pending_events_max
        self.write_events_max = write_events_max
        self.on_write = on_write
        self._pending: list[tuple[events.Batch, asyncio.Future[events.Recorded]]] = []
        self._pending_events = 0
        self._writing: asyncio.Task[None] | None = None

    @property
    def pending_events(self) -> int:
        return self._pending_events

    async def record(self, batch: events.Batch) -> events.Recorded:
        """Store the batch with whatever else is waiting; what was new, what repeated and what it charged."""
        if self._pending_events + len(batch.events) > self.pending_events_max:
            raise Problem(503, "ads-events-busy", f"{self._pending_events} ad events are waiting to be stored on "
                          f"this node (ads_events_pending_max {self.pending_events_max}); send them again shortly",
                          headers={"Retry-After": str(RETRY_AFTER_S)})
        answer: asyncio.Future[events.Recorded] = asyncio.get_running_loop().create_future()
        self._pending.append((batch, answer))
        self._pending_events += len(batch.events)
        if self._writing is None:
            self._writing = asyncio.create_task(self._write_all(), name="ads-events-write")
        return await answer

    async def close(self) -> None:
        """Wait for what is waiting to be written (a node stopping answers what it accepted)."""
        if self._writing is not None:
            await asyncio.shield(self._writing)

    async def _write_all(self) -> None:
        try:
            while self._pending:
                taken, self._pending = self._take()
                self._pending_events -= sum(len(batch.events) for batch, _ in taken)
                try:
                    recorded = await self._write([batch for batch, _ in taken])
                except Exception as exc:  # the database away: each request answers 503 and its page retries
                    for _, answer in taken:
                        if not answer.done():
                            answer.set_exception(exc)
                    continue
                self.on_write()
                for (_, answer), result in zip(taken, recorded, strict=True):
                    if not answer.done():  # a request given up on: stored all the same, as its page sends it again
                        answer.set_result(result)
        finally:
            self._writing = None

    def _take(self) -> tuple[list[tuple[events.Batch, asyncio.Future[events.Recorded]]],
                             list[tuple[events.Batch, asyncio.Future[events.Recorded]]]]:
        """The oldest batches up to `write_events_max` events (at least one batch), and the rest."""
        count, end = 0, 0
        while end < len(self._pending):
            size = len(self._pending[end][0].events)
            if end and count + size > self.write_events_max:
                break
            count += size
            end += 1
        return self._pending[:end], self._pending[end:]

    async def _write(self, batches: list[events.Batch]) -> list[events.Recorded]:
        retrying = AsyncRetrying(retry=retry_if_exception_type(_LOST_RACE), stop=stop_after_attempt(WRITE_ATTEMPTS_MAX),
                                 before_sleep=_again, reraise=True)
        return await retrying(events.record_many, self.pool, batches)


def _again(state: RetryCallState) -> None:
    log.warning("ad events written again (attempt %d): %r", state.attempt_number + 1,
                state.outcome.exception() if state.outcome else None)
