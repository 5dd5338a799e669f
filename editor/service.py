"""The editor context of one node: the sound library, challenges and what keeps them current (use counts, the
trending challenges), and its hooks into feeds (references checked on upload, uses counted when a video is ready,
trending challenges as For You candidates).

It reaches feeds only through `feeds.Feeds`' public hooks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from prometheus_client import Counter

from editor import challenges, sounds
from editor.audio import SoundLimits
from editor.challenges import Trending
from editor.sounds import SoundFiles, SoundLibrary
from feeds import Catalogue, Context, Feeds
from livecore.http import Problem
from livecore.node import Node
from livecore.tasks import stop_tasks

log = logging.getLogger("livecore.editor")

TRENDING_SOURCE = "trending_challenge"
USES_SWEEP_BATCH_MAX = 1000
ORPHAN_AGE_S = 600  # a file this old is past any upload still being checked: without a record, it is an orphan


class EditorMetrics:
    def __init__(self, registry: object) -> None:
        self.sounds_added = Counter("livecore_editor_sounds_added", "Sounds added to the library, by who added them",
                                    ["by"], registry=registry)
        self.sound_uses = Counter("livecore_editor_sound_uses", "Uses of sounds by ready videos counted, by when "
                                  "(ready: as the video became ready; sweep: caught up later)", ["when"],
                                  registry=registry)
        self.sound_reads = Counter("livecore_editor_sound_reads", "Sounds' audio read from PostgreSQL into this "
                                   "node's cache", registry=registry)


class Editor:
    def __init__(self, node: Node, feeds: Feeds) -> None:
        s = node.settings
        self.node = node
        self.feeds = feeds
        self.metrics = EditorMetrics(node.registry)
        self.sounds = SoundLibrary(node.pool, SoundFiles(s.data_dir), s.node_id,
                                   SoundLimits(s.sound_duration_ms_min, s.sound_duration_ms_max), s.sound_checks_max,
                                   s.sound_cache_bytes_max, self.metrics.sound_reads.inc)
        self.trending = Trending()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Hook into feeds and start the background work."""
        s = self.node.settings
        await asyncio.to_thread(self.sounds.cache.load)
        self.feeds.add_upload_check(self.check_video_references)
        self.feeds.add_ready_listener(self.video_ready)
        self.feeds.add_candidate_source(TRENDING_SOURCE, self.trending_candidates)
        await self.refresh_trending()
        self._tasks += [
            asyncio.create_task(_every(s.sound_sweep_ms, self.sweep), name="editor-sound-sweep"),
            asyncio.create_task(_every(s.challenge_trending_refresh_ms, self.refresh_trending),
                                name="editor-trending"),
        ]

    async def stop(self) -> None:
        await stop_tasks(*self._tasks)

    async def check_video_references(self, sound_id: int | None, challenge_id: int | None) -> None:
        """A new video's sound and challenge must exist (404 naming the field)."""
        pool = self.node.pool
        if sound_id is not None and not await sounds.sound_exists(pool, sound_id):
            raise Problem(404, "sound-not-found", f"sound_id: there is no sound {sound_id}", field="sound_id")
        if challenge_id is not None and not await challenges.challenge_exists(pool, challenge_id):
            raise Problem(404, "challenge-not-found", f"challenge_id: there is no challenge {challenge_id}",
                          field="challenge_id")

    async def video_ready(self, video_id: int) -> None:
        """A video became ready: count its use of a sound (once, however often this is said)."""
        counted = await sounds.count_uses(self.node.pool, [video_id])
        self.metrics.sound_uses.labels(when="ready").inc(counted)

    async def sweep(self) -> None:
        """Catch up what an outage or a stop left: uses not counted, audio files without a record."""
        await self.count_missed_uses()
        await self.sounds.remove_orphans(ORPHAN_AGE_S)

    async def count_missed_uses(self) -> int:
        """Count the uses no node counted when their video became ready; how many were counted now."""
        total = 0
        while missed := await sounds.uncounted_uses(self.node.pool, USES_SWEEP_BATCH_MAX):
            counted = await sounds.count_uses(self.node.pool, missed)
            total += counted
            if len(missed) < USES_SWEEP_BATCH_MAX:
                break
        if total:
            log.info("counted %d uses of sounds missed when their videos became ready", total)
            self.metrics.sound_uses.labels(when="sweep").inc(total)
        return total

    async def refresh_trending(self) -> None:
        """Rank the challenges by their videos' engagement over the last `challenge_trending_hours`."""
        s = self.node.settings
        now = dt.datetime.fromtimestamp(self.node.clock.now_ms() / 1000, tz=dt.UTC)
        self.trending = await challenges.trending(self.node.pool, now - dt.timedelta(hours=s.challenge_trending_hours),
                                                  now, s.challenge_trending_max, s.challenge_trending_videos_max)

    def trending_candidates(self, _catalogue: Catalogue, _coengagement: object, _context: Context) -> list[int]:
        """For You candidates: the best videos of the trending challenges (from memory, as a source must)."""
        return self.trending.candidate_videos()


async def _every(interval_ms: int, work: Callable[[], Awaitable[object]]) -> None:
    while True:
        await asyncio.sleep(interval_ms / 1000)
        try:
            await work()
        except Exception:
            log.exception("editor background work failed")
