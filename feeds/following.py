"""The Following feed: live creators first, then followed authors' videos, newest first.

Authors with up to `fanout_followers_max` followers come from the viewer's Redis timeline (fan-out on write);
those with more are read from PostgreSQL at request time (fan-out on read) and merged by id.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from feeds.timelines import Timelines
from feeds.viewers import Viewer


@dataclass(frozen=True)
class FollowingPage:
    video_ids: list[int]
    next_before: int | None


async def following_video_ids(pool: asyncpg.Pool, timelines: Timelines, big_authors: frozenset[int], viewer: Viewer,
                              before_id: int | None, limit: int) -> FollowingPage:
    """One page of the viewer's followed authors' videos below `before_id`, and where the next page starts."""
    followed = [a for a in viewer.following if a not in viewer.blocked]
    written = [a for a in followed if a not in big_authors]
    read = [a for a in followed if a in big_authors]
    ids, trimmed = await timelines.page(viewer.id, written, before_id, limit + 1)
    if trimmed and len(ids) <= limit:  # older than what the capped timeline keeps: PostgreSQL has the rest
        ids += await _newest_of(pool, written, ids[-1] if ids else before_id, limit + 1 - len(ids))
    if read:
        ids += await _newest_of(pool, read, before_id, limit + 1)
    merged = sorted(set(ids), reverse=True)[:limit + 1]
    page = merged[:limit]
    return FollowingPage(page, page[-1] if len(merged) > limit else None)


async def _newest_of(pool: asyncpg.Pool, author_ids: list[int], before_id: int | None, count: int) -> list[int]:
    rows = await pool.fetch(
        "SELECT id FROM videos WHERE author_id = ANY($1) AND state = 'ready' AND ($2::bigint IS NULL OR id < $2)"
        " ORDER BY id DESC LIMIT $3", author_ids, before_id, count)
    return [r["id"] for r in rows]
