"""The edit record in PostgreSQL (the book of record; the Redis stream only carries which edit to render next):
queued, rendering, then done (with its video), failed or cancelled."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
import orjson

State = Literal["queued", "rendering", "done", "failed", "cancelled"]
UNFINISHED = ("queued", "rendering")


@dataclass(frozen=True)
class Edit:
    id: int
    author_id: int
    decisions: dict[str, Any]
    length_ms: int
    state: State
    progress: float
    attempts: int
    video_id: int | None
    error: str | None
    credits: str
    created_at: dt.datetime

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "state": self.state, "progress": round(self.progress, 3), "attempts": self.attempts,
                "length_ms": self.length_ms, "video_id": self.video_id, "error": self.error,
                "credits": self.credits, "created_at": self.created_at.isoformat()}


def _from_row(row: asyncpg.Record) -> Edit:
    return Edit(id=row["id"], author_id=row["author_id"], decisions=orjson.loads(row["decisions"]),
                length_ms=row["length_ms"], state=row["state"], progress=row["progress"], attempts=row["attempts"],
                video_id=row["video_id"], error=row["error"], credits=row["credits"], created_at=row["created_at"])


async def queued_count(pool: asyncpg.Pool | asyncpg.Connection) -> int:
    return await pool.fetchval("SELECT count(*) FROM edits WHERE state = 'queued'")


async def create_edit(conn: asyncpg.Pool, author_id: int, decisions: dict[str, Any], length_ms: int,
                      credits: str) -> Edit:
    row = await conn.fetchrow(
        "INSERT INTO edits (author_id, decisions, length_ms, credits) VALUES ($1, $2, $3, $4) RETURNING *",
        author_id, orjson.dumps(decisions).decode(), length_ms, credits)
    return _from_row(row)


async def delete_unqueued(pool: asyncpg.Pool, edit_id: int) -> None:
    """Take back an edit that could not be queued (nothing has rendered it)."""
    await pool.execute("DELETE FROM edits WHERE id = $1 AND state = 'queued' AND attempts = 0", edit_id)


async def get_edit(pool: asyncpg.Pool, edit_id: int) -> Edit | None:
    row = await pool.fetchrow("SELECT * FROM edits WHERE id = $1", edit_id)
    return _from_row(row) if row else None


async def unfinished_ids(pool: asyncpg.Pool) -> list[int]:
    return [r["id"] for r in await pool.fetch("SELECT id FROM edits WHERE state IN ('queued', 'rendering')")]


async def start_attempt(pool: asyncpg.Pool, edit_id: int, renderer: str) -> Edit | None:
    """Mark the edit rendering on `renderer` and count the attempt; None when it is finished (or not there)."""
    row = await pool.fetchrow(
        "UPDATE edits SET state = 'rendering', attempts = attempts + 1, renderer = $2, progress = 0,"
        " updated_at = now() WHERE id = $1 AND state IN ('queued', 'rendering') RETURNING *", edit_id, renderer)
    return _from_row(row) if row else None


async def record_progress(pool: asyncpg.Pool, edit_id: int, progress: float) -> bool:
    """Store the progress; False when the edit is no longer rendering (cancelled meanwhile)."""
    found = await pool.fetchval(
        "UPDATE edits SET progress = $2, updated_at = now() WHERE id = $1 AND state = 'rendering' RETURNING id",
        edit_id, min(1.0, max(0.0, progress)))
    return found is not None


async def finish(pool: asyncpg.Pool, edit_id: int, state: State, error: str | None = None) -> bool:
    """Move a rendering (or queued) edit to its end state; False when it already was finished."""
    found = await pool.fetchval(
        "UPDATE edits SET state = $2, error = $3, progress = CASE WHEN $2 = 'done' THEN 1 ELSE progress END,"
        " updated_at = now() WHERE id = $1 AND state IN ('queued', 'rendering') RETURNING id", edit_id, state, error)
    return found is not None


async def cancel(pool: asyncpg.Pool, edit_id: int) -> Edit | None:
    """Cancel an unfinished edit: the edit now cancelled, or None when it was not unfinished."""
    row = await pool.fetchrow("UPDATE edits SET state = 'cancelled', updated_at = now()"
                              " WHERE id = $1 AND state IN ('queued', 'rendering') RETURNING *", edit_id)
    return _from_row(row) if row else None


async def attach_video(conn: asyncpg.Connection, edit_id: int) -> tuple[State, int | None]:
    """Lock the edit for making its video: its state and the video it already has (from an earlier attempt)."""
    row = await conn.fetchrow("SELECT state, video_id FROM edits WHERE id = $1 FOR UPDATE", edit_id)
    return row["state"], row["video_id"]


async def set_video(conn: asyncpg.Connection, edit_id: int, video_id: int) -> None:
    await conn.execute("UPDATE edits SET video_id = $2 WHERE id = $1", edit_id, video_id)


async def remix_allowed(pool: asyncpg.Pool, account_id: int) -> bool:
    return await pool.fetchval("SELECT NOT EXISTS (SELECT 1 FROM remix_opt_outs WHERE account_id = $1)", account_id)


async def set_remix_allowed(pool: asyncpg.Pool, account_id: int, allowed: bool) -> None:
    if allowed:
        await pool.execute("DELETE FROM remix_opt_outs WHERE account_id = $1", account_id)
    else:
        await pool.execute("INSERT INTO remix_opt_outs (account_id) VALUES ($1) ON CONFLICT DO NOTHING", account_id)
