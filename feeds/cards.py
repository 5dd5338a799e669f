"""Feed items as clients get them: video cards (the video now, whether the viewer liked it, why it is there) and
live cards (a followed or recommended creator live now, opening the watch page)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from feeds import rules, videos
from feeds.catalogue import Catalogue
from feeds.engagements import liked_by
from feeds.viewers import Viewer
from livecore.node import RoomEvents
from livecore.streams import live_streams

LIVE_CANDIDATES_MAX = 200


async def video_cards(pool: asyncpg.Pool, catalogue: Catalogue, viewer: Viewer, picks: list[tuple[int, str]],
                      today: dt.date, *, following: bool) -> list[dict[str, Any]]:
    """Cards for (video id, source) in order, leaving out what the rules do not let this viewer see."""
    missing = [video_id for video_id, _ in picks if video_id not in catalogue.videos]
    if missing:
        await catalogue.load_ready(today, missing)
    allowed = [(video_id, source) for video_id, source in picks
               if video_id in catalogue.videos and rules.may_see(viewer, catalogue.videos[video_id],
                                                                  following=following)]
    ids = [video_id for video_id, _ in allowed]
    found = await videos.videos_by_ids(pool, ids)
    liked = await liked_by(pool, viewer.id, ids)
    return [{"kind": "video", "video": found[video_id].public(), "source": source, "liked": video_id in liked}
            for video_id, source in allowed if video_id in found and found[video_id].state == "ready"]


async def live_cards(pool: asyncpg.Pool, rooms: RoomEvents | None, viewer: Viewer, *, followed_only: bool,
                     count: int) -> list[dict[str, Any]]:
    """Creators live now: those the viewer follows first, busiest first; others too unless `followed_only`."""
    live = [s for s in await live_streams(pool, LIVE_CANDIDATES_MAX)
            if s.creator_id not in viewer.blocked and s.creator_id != viewer.id
            and (s.creator_id in viewer.following or not followed_only)]
    if not live:
        return []
    counts = await rooms.viewer_counts([s.id for s in live]) if rooms else {}
    live.sort(key=lambda s: (s.creator_id not in viewer.following, -counts.get(s.id, 0), -s.id))
    return [{"kind": "live", "stream_id": s.id, "title": s.title,
             "creator": {"id": s.creator_id, "username": s.creator_username, "display_name": s.creator_display_name},
             "viewers": counts.get(s.id, 0), "thumbnail_url": s.thumbnail_url, "watch_url": f"/watch.html?room={s.id}"}
            for s in live[:count]]
