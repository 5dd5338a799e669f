"""Engagement events from the feed page: durable in PostgreSQL first (an event id counts once per viewer), then
appended to a bounded Redis stream that every node's online learner reads.

Redis is not the book of record: an event that could not be streamed is still counted, and a learner that starts
reads back what the stream still holds.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
import redis.asyncio as redis
from redis.exceptions import RedisError

log = logging.getLogger("livecore.feeds.engagements")

STREAM_KEY = "feeds:engagements"
Kind = Literal["seen", "watch", "like", "unlike", "share", "comment", "follow", "not_interested", "report"]
WATCH_RATIO_MAX = 10.0  # a looped video counts as watched ten times at most
EXCLUDING = {"not_interested": "not_interested", "report": "report"}


@dataclass(frozen=True)
class Event:
    id: str
    video_id: int
    kind: str
    watch_ms: int | None = None


@dataclass(frozen=True)
class Recorded:
    """An event as stored and streamed: who did what to which video of which author, and when."""

    user_id: int
    region: str
    video_id: int
    author_id: int
    kind: str
    watch_ratio: float | None
    at_ms: int

    def fields(self) -> dict[str, str]:
        return {"u": str(self.user_id), "g": self.region, "v": str(self.video_id), "a": str(self.author_id),
                "k": self.kind,
                "r": "" if self.watch_ratio is None else f"{self.watch_ratio:.4f}", "t": str(self.at_ms)}

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> Recorded:
        ratio = fields[b"r"].decode()
        return cls(int(fields[b"u"]), fields[b"g"].decode(), int(fields[b"v"]), int(fields[b"a"]),
                   fields[b"k"].decode(), float(ratio) if ratio else None, int(fields[b"t"]))


@dataclass(frozen=True)
class BatchResult:
    recorded: list[Recorded]
    duplicates: int
    unknown_videos: list[int]

    def public(self) -> dict[str, Any]:
        return {"accepted": len(self.recorded), "duplicates": self.duplicates, "unknown_videos": self.unknown_videos}


async def record_batch(pool: asyncpg.Pool, client: redis.Redis, user_id: int, region: str, events: list[Event],
                       now_ms: int, stream_entries_max: int) -> BatchResult:
    """Store the events that are new (by id) for videos that exist, apply their counts, stream them."""
    video_ids = sorted({e.video_id for e in events})
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch("SELECT id, author_id, duration_ms FROM videos WHERE id = ANY($1) AND state = 'ready'",
                                video_ids)
        known = {r["id"]: (r["author_id"], r["duration_ms"]) for r in rows}
        usable = [e for e in _first_of_each_id(events) if e.video_id in known]
        at = dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC)
        ratios = [_ratio(e, known[e.video_id][1]) for e in usable]
        inserted = await conn.fetch(
            "INSERT INTO engagements (user_id, event_id, video_id, kind, watch_ms, watch_ratio, at)"
            " SELECT $1, e.id, e.video_id, e.kind, e.watch_ms, e.ratio, $7"
            " FROM unnest($2::text[], $3::bigint[], $4::text[], $5::int[], $6::real[])"
            "  AS e(id, video_id, kind, watch_ms, ratio)"
            " ON CONFLICT (user_id, event_id) DO NOTHING RETURNING event_id",
            user_id, [e.id for e in usable], [e.video_id for e in usable], [e.kind for e in usable],
            [e.watch_ms for e in usable], ratios, at,
        )
        new_ids = {r["event_id"] for r in inserted}
        recorded = [Recorded(user_id, region, e.video_id, known[e.video_id][0], e.kind, ratio, now_ms)
                    for e, ratio in zip(usable, ratios, strict=True) if e.id in new_ids]
        for event in recorded:
            await _apply(conn, event)
    await _stream(client, recorded, stream_entries_max)
    return BatchResult(recorded, len(usable) - len(recorded),
                       sorted({e.video_id for e in events} - set(known)))


def _first_of_each_id(events: list[Event]) -> list[Event]:
    seen: set[str] = set()
    kept = []
    for event in events:
        if event.id not in seen:
            seen.add(event.id)
            kept.append(event)
    return kept


def _ratio(event: Event, duration_ms: int | None) -> float | None:
    if event.watch_ms is None or not duration_ms:
        return None
    return min(WATCH_RATIO_MAX, event.watch_ms / duration_ms)


async def _apply(conn: asyncpg.Connection, event: Recorded) -> None:
    """The counts and exclusions an event changes (inside the batch's transaction)."""
    if event.kind == "like":
        if await conn.fetchval("INSERT INTO video_likes (user_id, video_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
                               " RETURNING 1", event.user_id, event.video_id):
            await conn.execute("UPDATE videos SET likes = likes + 1 WHERE id = $1", event.video_id)
    elif event.kind == "unlike":
        if await conn.fetchval("DELETE FROM video_likes WHERE user_id = $1 AND video_id = $2 RETURNING 1",
                               event.user_id, event.video_id):
            await conn.execute("UPDATE videos SET likes = likes - 1 WHERE id = $1", event.video_id)
    elif event.kind == "share":
        await conn.execute("UPDATE videos SET shares = shares + 1 WHERE id = $1", event.video_id)
    elif event.kind == "seen":
        await conn.execute("UPDATE videos SET views = views + 1 WHERE id = $1", event.video_id)
    elif event.kind in EXCLUDING and event.author_id != event.user_id:
        await conn.execute("INSERT INTO feed_exclusions (user_id, author_id, reason) VALUES ($1, $2, $3)"
                           " ON CONFLICT (user_id, author_id) DO NOTHING",
                           event.user_id, event.author_id, EXCLUDING[event.kind])


async def _stream(client: redis.Redis, recorded: list[Recorded], entries_max: int) -> None:
    if not recorded:
        return
    try:
        async with client.pipeline(transaction=False) as pipe:
            for event in recorded:
                pipe.xadd(STREAM_KEY, event.fields(), maxlen=entries_max, approximate=True)  # type: ignore[arg-type]
            await pipe.execute()
    except RedisError as exc:
        log.warning("%d engagement events stored but not streamed to the learner: %s", len(recorded), exc)


async def read_stream(client: redis.Redis, after: str, count: int, block_ms: int | None) -> list[tuple[str, Recorded]]:
    """Events streamed after the entry id `after` ("0" for all still kept), waiting up to `block_ms` for one."""
    answer = await client.xread({STREAM_KEY: after}, count=count, block=block_ms)
    found = []
    for _, entries in answer or []:
        for entry_id, fields in entries:
            found.append((entry_id.decode() if isinstance(entry_id, bytes) else entry_id, Recorded.from_fields(fields)))
    return found

