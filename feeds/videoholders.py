"""Reaching the node that holds a video's files: which node that is (the video's row); the copy of its files on
this node is an `OwnerCopies` (livecore/media/ownercopies.py), under `<data dir>/video-cache/<id>/<name>`."""

from __future__ import annotations

import asyncpg

from livecore.media.ownercopies import CopiesOf

VIDEO_COPIES = CopiesOf(kind="video", not_found="video-not-found", setting="video_cache_bytes_max")


async def holder_of(pool: asyncpg.Pool, video_id: int) -> tuple[bool, str | None]:
    """Whether the video is ready, and the node that holds its files (None for a video made before nodes were
    recorded)."""
    row = await pool.fetchrow("SELECT state, node_id FROM videos WHERE id = $1", video_id)
    if row is None:
        return False, None
    return row["state"] == "ready", row["node_id"]
