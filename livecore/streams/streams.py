"""The stream record: a creator's live session and its room."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

import asyncpg

_COLUMNS = (
    "s.id, s.creator_id, s.title, s.stream_key, s.state, s.created_at, s.started_at, s.ended_at,"
    " s.recording_url, s.thumbnail_url, a.username, a.display_name"
)


@dataclass(frozen=True)
class Stream:
    id: int
    creator_id: int
    title: str
    stream_key: str
    state: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    creator_username: str
    creator_display_name: str
    recording_url: str | None = None
    thumbnail_url: str | None = None

    def public(self, viewers: int = 0) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "state": self.state,
            "creator": {
                "id": self.creator_id, "username": self.creator_username, "display_name": self.creator_display_name
            },
            "viewers": viewers,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "watch_url": f"/watch.html?room={self.id}",
            "recording_url": self.recording_url,
            "thumbnail_url": self.thumbnail_url,
        }


def _from_row(row: asyncpg.Record) -> Stream:
    return Stream(
        id=row["id"], creator_id=row["creator_id"], title=row["title"], stream_key=row["stream_key"],
        state=row["state"], created_at=row["created_at"], started_at=row["started_at"], ended_at=row["ended_at"],
        creator_username=row["username"], creator_display_name=row["display_name"],
        recording_url=row["recording_url"], thumbnail_url=row["thumbnail_url"],
    )


def _at(ms: int) -> dt.datetime:
    """A time from the node's clock (milliseconds) as PostgreSQL keeps it."""
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


async def create_stream(pool: asyncpg.Pool, creator_id: int, title: str, publish_by_ms: int,
                        node_id: str | None = None) -> Stream:
    """A new stream with a fresh stream key, waiting for its publisher until `publish_by_ms`; its room opens at once.
    `node_id`: the node creating it (it vouches for the stream until a publisher comes)."""
    row = await pool.fetchrow(
        "WITH s AS (INSERT INTO streams (creator_id, title, stream_key, state, publisher_deadline_at,"
        " created_on_node) VALUES ($1, $2, $3, 'created', $4, $5) RETURNING *)"
        f" SELECT {_COLUMNS} FROM s JOIN accounts a ON a.id = s.creator_id",
        creator_id, title, "sk_" + secrets.token_urlsafe(24), _at(publish_by_ms), node_id,
    )
    return _from_row(row)


async def get_stream(pool: asyncpg.Pool, stream_id: int) -> Stream | None:
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM streams s JOIN accounts a ON a.id = s.creator_id WHERE s.id = $1", stream_id
    )
    return _from_row(row) if row else None


async def mark_live(pool: asyncpg.Pool, stream_id: int, deadline_ms: int) -> bool:
    """A publisher is connected: the stream is live (started now, the first time) and ends at `deadline_ms` unless
    that is renewed. False when it had already ended."""
    updated = await pool.fetchval(
        "UPDATE streams SET state = 'live', started_at = coalesce(started_at, now()), publisher_deadline_at = $2"
        " WHERE id = $1 AND state <> 'ended' RETURNING id", stream_id, _at(deadline_ms),
    )
    return updated is not None


async def renew_publishers(pool: asyncpg.Pool, owned: list[int], connected: list[int], deadline_ms: int,
                           renew_before_ms: int) -> list[int]:
    """Move the deadline of the `connected` streams whose deadline is before `renew_before_ms` to `deadline_ms`, in
    the same round trip as finding which `owned` streams have ended (on any node)."""
    rows = await pool.fetch(
        "WITH renewed AS (UPDATE streams SET publisher_deadline_at = $3 WHERE id = ANY($2) AND state = 'live'"
        " AND publisher_deadline_at < $4 RETURNING id)"
        " SELECT id FROM streams WHERE id = ANY($1) AND state = 'ended'",
        owned, connected, _at(deadline_ms), _at(renew_before_ms),
    )
    return [row["id"] for row in rows]


async def publisher_left(pool: asyncpg.Pool, stream_id: int, deadline_ms: int) -> None:
    """The publisher of a live stream is gone: unless one connects again, the stream ends at `deadline_ms`. (A
    stream that never went live keeps the deadline it was created with.)"""
    await pool.execute(
        "UPDATE streams SET publisher_deadline_at = $2 WHERE id = $1 AND state = 'live'", stream_id, _at(deadline_ms)
    )


async def overdue_streams(pool: asyncpg.Pool, now_ms: int, limit: int) -> list[tuple[int, str]]:
    """(id, state) of the streams not ended whose publisher deadline has passed, the most overdue first."""
    rows = await pool.fetch(
        "SELECT id, state FROM streams WHERE state <> 'ended' AND publisher_deadline_at < $1"
        " ORDER BY publisher_deadline_at LIMIT $2", _at(now_ms), limit,
    )
    return [(row["id"], row["state"]) for row in rows]


async def mark_ended(pool: asyncpg.Pool, stream_id: int, overdue_at_ms: int | None = None) -> bool:
    """Record that a stream ended; with `overdue_at_ms`, only if its publisher deadline is before then. True only
    for the one call that ended it, so its end is announced once however many nodes try."""
    ended = await pool.fetchval(
        "UPDATE streams SET state = 'ended', ended_at = coalesce(ended_at, now())"
        " WHERE id = $1 AND state <> 'ended' AND ($2::timestamptz IS NULL OR publisher_deadline_at < $2)"
        " RETURNING id", stream_id, None if overdue_at_ms is None else _at(overdue_at_ms),
    )
    return ended is not None


async def live_stream_origins(pool: asyncpg.Pool, after_id: int, limit: int) -> list[tuple[int, str | None]]:
    """(id, node it was created on) of live streams with ids above `after_id`, in id order, at most `limit`."""
    rows = await pool.fetch(
        "SELECT id, created_on_node FROM streams WHERE state = 'live' AND id > $1 ORDER BY id LIMIT $2",
        after_id, limit,
    )
    return [(r["id"], r["created_on_node"]) for r in rows]


async def live_streams(pool: asyncpg.Pool, limit: int = 100) -> list[Stream]:
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM streams s JOIN accounts a ON a.id = s.creator_id"
        " WHERE s.state = 'live' ORDER BY s.started_at DESC LIMIT $1",
        limit,
    )
    return [_from_row(r) for r in rows]


async def set_media_urls(pool: asyncpg.Pool, stream_id: int, *, recording_url: str | None = None,
                         thumbnail_url: str | None = None) -> None:
    """Record where a stream's recording and thumbnail are served (the media plane calls this)."""
    await pool.execute(
        "UPDATE streams SET recording_url = coalesce($2, recording_url), thumbnail_url = coalesce($3, thumbnail_url)"
        " WHERE id = $1", stream_id, recording_url, thumbnail_url,
    )


async def recorded_streams(pool: asyncpg.Pool, ended_since_ms: int, limit: int) -> list[Stream]:
    """Ended streams with a recording that ended at or after `ended_since_ms`, oldest first, at most `limit`."""
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM streams s JOIN accounts a ON a.id = s.creator_id"
        " WHERE s.state = 'ended' AND s.recording_url IS NOT NULL AND s.ended_at >= $1"
        " ORDER BY s.ended_at LIMIT $2",
        _at(ended_since_ms), limit,
    )
    return [_from_row(r) for r in rows]


async def set_media_node(pool: asyncpg.Pool, stream_id: int, node_id: str) -> None:
    """Record that `node_id` makes the stream's media files from now on (the media plane calls this)."""
    await pool.execute("UPDATE streams SET media_node = $2 WHERE id = $1", stream_id, node_id)


async def media_node(pool: asyncpg.Pool, stream_id: int) -> tuple[str, str | None] | None:
    """(state, the node that made the stream's media files) of a stream, None when there is no such stream."""
    row = await pool.fetchrow("SELECT state, media_node FROM streams WHERE id = $1", stream_id)
    return None if row is None else (row["state"], row["media_node"])
