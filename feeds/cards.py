"""Feed items as clients get them: video cards (the video now, whether the viewer liked it, why it is there) and
live cards (a followed or recommended creator live now, opening the watch page)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import asyncpg

from feeds import rules, videos
from feeds.catalogue import Catalogue
from feeds.viewers import Viewer
from livecore.clock import Clock
from livecore.node import RoomEvents
from livecore.streams import Stream, live_streams

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
    found = await videos.videos_for_viewer(pool, [video_id for video_id, _ in allowed], viewer.id)
    return [{"kind": "video", "video": found[video_id][0].public(), "source": source, "liked": found[video_id][1],
             "following": found[video_id][0].author_id in viewer.following}
            for video_id, source in allowed if video_id in found and found[video_id][0].state == "ready"]


class LiveNow:
    """The streams live now with their viewer counts, read at most once per `ttl_ms` per node: every feed page
    shows live cards, and the directory does not change per request."""

    def __init__(self, pool: asyncpg.Pool, rooms: RoomEvents | None, clock: Clock, ttl_ms: int) -> None:
        self.pool = pool
        self.rooms = rooms
        self.clock = clock
        self.ttl_ms = ttl_ms
        self._streams: list[Stream] = []
        self._counts: dict[int, int] = {}
        self._read_at_ms: int | None = None
        self._lock = asyncio.Lock()

    async def streams(self) -> tuple[list[Stream], dict[int, int]]:
        if self._read_at_ms is not None and self._lock.locked():
            return self._streams, self._counts  # being read again: the last list, rather than a queue behind it
        async with self._lock:
            now_ms = self.clock.now_ms()
            if self._read_at_ms is None or now_ms - self._read_at_ms >= self.ttl_ms:
                self._streams = await live_streams(self.pool, LIVE_CANDIDATES_MAX)
                ids = [s.id for s in self._streams]
                self._counts = await self.rooms.viewer_counts(ids) if self.rooms and ids else {}
                self._read_at_ms = now_ms
            return self._streams, self._counts


async def live_cards(live_now: LiveNow, viewer: Viewer, *, followed_only: bool, count: int) -> list[dict[str, Any]]:
    """Creators live now: those the viewer follows first, busiest first; others too unless `followed_only`."""
    streams, counts = await live_now.streams()
    live = [s for s in streams if s.creator_id not in viewer.blocked and s.creator_id != viewer.id
            and (s.creator_id in viewer.following or not followed_only)]
    live.sort(key=lambda s: (s.creator_id not in viewer.following, -counts.get(s.id, 0), -s.id))
    return [{"kind": "live", "stream_id": s.id, "title": s.title,
             "creator": {"id": s.creator_id, "username": s.creator_username, "display_name": s.creator_display_name},
             "viewers": counts.get(s.id, 0), "thumbnail_url": s.thumbnail_url, "watch_url": f"/watch.html?room={s.id}"}
            for s in live[:count]]
