"""The video record: created while its file is processed, then ready (playable) or failed."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import asyncpg

_COLUMNS = ("v.id, v.author_id, v.caption, v.hashtags, v.sound_id, v.challenge_id, v.mature, v.state, v.failure,"
            " v.source_stream_id, v.duration_ms, v.width, v.height, v.likes, v.shares, v.views, v.created_at,"
            " a.username, a.display_name")
HASHTAG = re.compile(r"#?([\w]{1,50})", re.UNICODE)


@dataclass(frozen=True)
class Video:
    id: int
    author_id: int
    caption: str
    hashtags: list[str]
    sound_id: int | None
    challenge_id: int | None
    mature: bool
    state: str
    failure: str | None
    source_stream_id: int | None
    duration_ms: int | None
    width: int | None
    height: int | None
    likes: int
    shares: int
    views: int
    created_at: dt.datetime
    author_username: str
    author_display_name: str

    def public(self) -> dict[str, Any]:
        ready = self.state == "ready"
        return {
            "id": self.id,
            "state": self.state,
            "failure": self.failure,
            "author": {"id": self.author_id, "username": self.author_username,
                       "display_name": self.author_display_name},
            "caption": self.caption,
            "hashtags": self.hashtags,
            "sound_id": self.sound_id,
            "challenge_id": self.challenge_id,
            "mature": self.mature,
            "from_stream_id": self.source_stream_id,
            "duration_ms": self.duration_ms,
            "width": self.width,
            "height": self.height,
            "likes": self.likes,
            "shares": self.shares,
            "views": self.views,
            "created_at": self.created_at.isoformat(),
            "video_url": f"/videos/{self.id}/video.mp4" if ready else None,
            "thumbnail_url": f"/videos/{self.id}/thumbnail.jpg" if ready else None,
        }


def normalized_hashtags(raw: str | list[str]) -> list[str]:
    """Hashtags as stored: lower case, without '#', each once, in the order given."""
    words = raw if isinstance(raw, list) else re.split(r"[\s,]+", raw)
    found: list[str] = []
    for word in words:
        match = HASHTAG.fullmatch(word.strip())
        if match and match.group(1).lower() not in found:
            found.append(match.group(1).lower())
    return found


def _from_row(row: asyncpg.Record) -> Video:
    return Video(
        id=row["id"], author_id=row["author_id"], caption=row["caption"], hashtags=list(row["hashtags"]),
        sound_id=row["sound_id"], challenge_id=row["challenge_id"], mature=row["mature"], state=row["state"],
        failure=row["failure"], source_stream_id=row["source_stream_id"], duration_ms=row["duration_ms"],
        width=row["width"], height=row["height"], likes=row["likes"], shares=row["shares"], views=row["views"],
        created_at=row["created_at"], author_username=row["username"], author_display_name=row["display_name"],
    )


async def create_video(pool: asyncpg.Pool, author_id: int, caption: str, hashtags: list[str],
                       sound_id: int | None, challenge_id: int | None, mature: bool,
                       source_stream_id: int | None = None, node_id: str | None = None) -> int | None:
    """A new video in `processing` whose files node `node_id` writes; None when the stream's recording was already
    made a video."""
    return await pool.fetchval(
        "INSERT INTO videos (author_id, caption, hashtags, sound_id, challenge_id, mature, source_stream_id, node_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (source_stream_id) DO NOTHING RETURNING id",
        author_id, caption, hashtags, sound_id, challenge_id, mature, source_stream_id, node_id,
    )


async def mark_ready(pool: asyncpg.Pool, video_id: int, duration_ms: int, width: int, height: int) -> None:
    await pool.execute(
        "UPDATE videos SET state = 'ready', duration_ms = $2, width = $3, height = $4, ready_at = now()"
        " WHERE id = $1", video_id, duration_ms, width, height,
    )


async def mark_failed(pool: asyncpg.Pool, video_id: int, failure: str) -> None:
    await pool.execute("UPDATE videos SET state = 'failed', failure = $2 WHERE id = $1", video_id, failure)


async def get_video(pool: asyncpg.Pool, video_id: int) -> Video | None:
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM videos v JOIN accounts a ON a.id = v.author_id WHERE v.id = $1", video_id)
    return _from_row(row) if row else None


async def videos_by_ids(pool: asyncpg.Pool, video_ids: list[int]) -> dict[int, Video]:
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM videos v JOIN accounts a ON a.id = v.author_id WHERE v.id = ANY($1)", video_ids)
    return {r["id"]: _from_row(r) for r in rows}


async def videos_for_viewer(pool: asyncpg.Pool, video_ids: list[int], viewer_id: int) -> dict[int, tuple[Video, bool]]:
    """The videos by id, each with whether the viewer likes it (one round trip)."""
    rows = await pool.fetch(
        f"SELECT {_COLUMNS}, EXISTS (SELECT 1 FROM video_likes l WHERE l.user_id = $2 AND l.video_id = v.id) AS liked"
        " FROM videos v JOIN accounts a ON a.id = v.author_id WHERE v.id = ANY($1)", video_ids, viewer_id)
    return {r["id"]: (_from_row(r), r["liked"]) for r in rows}


async def author_videos(pool: asyncpg.Pool, author_id: int, before_id: int | None, limit: int,
                        include_unready: bool) -> list[Video]:
    """An author's videos, newest first, below `before_id`; only ready ones unless `include_unready`."""
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM videos v JOIN accounts a ON a.id = v.author_id"
        " WHERE v.author_id = $1 AND ($2::bigint IS NULL OR v.id < $2) AND ($3 OR v.state = 'ready')"
        " ORDER BY v.id DESC LIMIT $4",
        author_id, before_id, include_unready, limit,
    )
    return [_from_row(r) for r in rows]


async def opt_out_of_recording(pool: asyncpg.Pool, stream_id: int, creator_id: int) -> None:
    await pool.execute("INSERT INTO recording_opt_outs (stream_id, creator_id) VALUES ($1, $2)"
                       " ON CONFLICT (stream_id) DO NOTHING", stream_id, creator_id)


async def opt_back_in_to_recording(pool: asyncpg.Pool, stream_id: int) -> None:
    await pool.execute("DELETE FROM recording_opt_outs WHERE stream_id = $1", stream_id)


async def streams_without_video(pool: asyncpg.Pool, stream_ids: list[int]) -> set[int]:
    """Those of `stream_ids` whose recording is not a video yet and whose creator did not opt out."""
    rows = await pool.fetch(
        "SELECT s FROM unnest($1::bigint[]) AS s WHERE NOT EXISTS (SELECT 1 FROM videos WHERE source_stream_id = s)"
        " AND NOT EXISTS (SELECT 1 FROM recording_opt_outs WHERE stream_id = s)", stream_ids)
    return {r["s"] for r in rows}
