"""The stream record: a creator's live session and its room."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

import asyncpg

from livecore.http import Problem

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


async def create_stream(pool: asyncpg.Pool, creator_id: int, title: str, node_id: str | None = None) -> Stream:
    """A new live stream with a fresh stream key; its room opens at once. `node_id`: the node creating it."""
    row = await pool.fetchrow(
        "WITH s AS (INSERT INTO streams (creator_id, title, stream_key, state, started_at, created_on_node)"
        " VALUES ($1, $2, $3, 'live', now(), $4) RETURNING *)"
        f" SELECT {_COLUMNS} FROM s JOIN accounts a ON a.id = s.creator_id",
        creator_id, title, "sk_" + secrets.token_urlsafe(24), node_id,
    )
    return _from_row(row)


async def get_stream(pool: asyncpg.Pool, stream_id: int) -> Stream | None:
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM streams s JOIN accounts a ON a.id = s.creator_id WHERE s.id = $1", stream_id
    )
    return _from_row(row) if row else None


async def end_stream(pool: asyncpg.Pool, stream_id: int, by_user_id: int) -> Stream:
    """Mark a live stream ended; only its creator may. Ending twice is not an error."""
    stream = await get_stream(pool, stream_id)
    if stream is None:
        raise Problem(404, "stream-not-found", f"there is no stream {stream_id}")
    if stream.creator_id != by_user_id:
        raise Problem(403, "not-your-stream", "only the stream's creator can end it")
    await pool.execute(
        "UPDATE streams SET state = 'ended', ended_at = coalesce(ended_at, now()) WHERE id = $1", stream_id
    )
    ended = await get_stream(pool, stream_id)
    assert ended is not None
    return ended


async def end_streams_if_live(pool: asyncpg.Pool, stream_ids: list[int]) -> list[int]:
    """End those of `stream_ids` that are still live; the ids this call ended (nodes racing end each once)."""
    rows = await pool.fetch(
        "UPDATE streams SET state = 'ended', ended_at = coalesce(ended_at, now())"
        " WHERE id = ANY($1::bigint[]) AND state = 'live' RETURNING id", stream_ids,
    )
    return sorted(r["id"] for r in rows)


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
