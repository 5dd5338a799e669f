"""Which edits to render, on a Redis Streams consumer group shared by every node.

A node reads with XREADGROUP (each entry goes to one node), XACKs and deletes an entry once its edit is finished,
refreshes the idle time of entries it is rendering (XCLAIM to itself), and takes over with XAUTOCLAIM the entries
a dead node left idle. PostgreSQL stays the book of record: a stream lost with its Redis is rebuilt from the
unfinished edits when the group has to be created again.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as redis
from redis.exceptions import ResponseError

STREAM = "editor:renders"
GROUP = "renderers"
PROGRESS_CHANNEL = "editor:edits:{id}"  # pub/sub: {"id", "state", "progress"} as a render goes


class QueueMissing(Exception):
    """The stream's group is gone (Redis lost it): whoever sets it up again must queue the unfinished edits."""


@dataclass(frozen=True)
class Entry:
    entry_id: str
    edit_id: int


class RenderQueue:
    def __init__(self, client: redis.Redis, consumer: str) -> None:
        self.redis = client
        self.consumer = consumer

    async def ensure_group(self) -> bool:
        """Create the stream and its group if they are missing; True when they were (Redis lost them)."""
        try:
            await self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" in str(exc):
                return False
            raise
        return True

    async def add(self, edit_id: int) -> str:
        entry_id = await self.redis.xadd(STREAM, {"edit_id": str(edit_id)})
        return _text(entry_id)

    async def read(self, block_ms: int) -> Entry | None:
        """The next entry nobody has taken, waiting up to `block_ms`; QueueMissing when the group is gone."""
        try:
            answer = await self.redis.xreadgroup(GROUP, self.consumer, {STREAM: ">"}, count=1, block=block_ms)
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                raise QueueMissing(str(exc)) from exc
            raise
        for _stream, entries in answer or []:
            for entry_id, fields in entries:
                return _entry(entry_id, fields)
        return None

    async def claim_abandoned(self, idle_ms: int) -> Entry | None:
        """One entry another consumer took but has not touched for `idle_ms` (its node died), now ours."""
        try:
            answer = await self.redis.xautoclaim(STREAM, GROUP, self.consumer, min_idle_time=idle_ms,
                                                 start_id="0-0", count=1)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            return None
        for entry_id, fields in answer[1] if len(answer) > 1 else []:
            if fields:  # an entry deleted meanwhile comes back without its fields
                return _entry(entry_id, fields)
        return None

    async def touch(self, entry_id: str) -> None:
        """Reset the entry's idle time: it is being worked on."""
        await self.redis.xclaim(STREAM, GROUP, self.consumer, 0, [entry_id], justid=True)

    async def done(self, entry_id: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(STREAM, GROUP, entry_id)
            pipe.xdel(STREAM, entry_id)
            await pipe.execute()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _entry(entry_id: bytes | str, fields: dict[bytes | str, bytes | str]) -> Entry:
    values = {_text(k): _text(v) for k, v in fields.items()}
    return Entry(_text(entry_id), int(values.get("edit_id", "0")))
