"""The feeds context of one node: video processing, engagement, the Following timelines, the For You pipeline and
the background work that keeps them current.

Other contexts reach it only through its routes; it reads accounts, follows and streams through livecore's public
functions (livecore.accounts, livecore.streams).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from prometheus_client import Counter

from feeds import cards, cursors, engagements, recordings, videos
from feeds.catalogue import Catalogue
from feeds.coengagement import CoEngagement
from feeds.following import following_video_ids
from feeds.foryou import AdStage, ForYou, ForYouLimits
from feeds.labels import CardLabels
from feeds.learner import Learner
from feeds.processing import VideoFiles, VideoProcessor
from feeds.ranker import OnlineRanker
from feeds.sources import Source
from feeds.timelines import Timelines
from feeds.transcoding import VideoLimits
from feeds.trending import Scored, SharedTrending
from feeds.videoholders import VIDEO_COPIES
from feeds.viewers import Viewer, authors_followed_by_more_than, followers_of
from livecore.accounts import Account
from livecore.media.ownercopies import FileCopies, OwnerCopies
from livecore.node import Node
from livecore.tasks import stop_tasks

log = logging.getLogger("livecore.feeds")

FOLLOWING_LIVE_CARDS_MAX = 10
# Another context's check of a new video's references (sound_id, challenge_id): raises a Problem when one is wrong.
UploadCheck = Callable[[int | None, int | None], Awaitable[None]]
ReadyListener = Callable[[int], Awaitable[None]]


class FeedsMetrics:
    def __init__(self, registry: Any) -> None:
        self.videos_ready = Counter("livecore_feed_videos_ready", "Videos that became playable", registry=registry)
        self.engagements = Counter("livecore_feed_engagements", "Engagement events received, by result",
                                   ["result"], registry=registry)
        self.timeline_writes = Counter("livecore_feed_timeline_writes",
                                       "Follower timelines a new video was written into (fan-out on write)",
                                       registry=registry)
        self.video_fetches = Counter("livecore_feed_video_fetches", "Video files fetched from the node that holds "
                                     "them into this node's cache", registry=registry)
        self.video_files_served = Counter("livecore_feed_video_files_served", "Video file requests answered, by "
                                          "where the file was (own: processed here; copy: this node's cache)",
                                          ["source"], registry=registry)
        self.timeline_rebuilds = Counter("livecore_feed_timeline_rebuilds", "Following timelines rebuilt from "
                                         "PostgreSQL (missing, expired, or built for other authors)",
                                         registry=registry)
        self.pages = Counter("livecore_feed_pages", "Feed pages served, by feed", ["feed"], registry=registry)


class Feeds:
    def __init__(self, node: Node) -> None:
        s = node.settings
        self.node = node
        self.metrics = FeedsMetrics(node.registry)
        self.files = VideoFiles(s.data_dir / "videos")
        self.processor = VideoProcessor(node.pool, self.files, VideoLimits(s.video_duration_ms_max,
                                                                           s.video_edge_px_max),
                                        s.video_workers, s.video_queue_max, self.video_ready)
        self.holders = OwnerCopies(FileCopies(s.data_dir / "video-cache", s.video_cache_bytes_max, VIDEO_COPIES),
                                   s.node_request_timeout_ms, s.video_fetches_max, self.metrics.video_fetches.inc)
        self.timelines = Timelines(node.redis, node.pool, s.timeline_entries_max, s.timeline_ttl_s,
                                   s.fanout_batch_max, self.metrics.timeline_rebuilds.inc)
        self.catalogue = Catalogue(node.pool, s.foryou_catalogue_videos_max)
        self.trending = SharedTrending(node.pool, node.redis, s.node_id, s.foryou_refresh_ms)
        self.big_authors: frozenset[int] = frozenset()
        self.live_now = cards.LiveNow(node.pool, node.rooms, node.clock, s.feed_live_cache_ms)
        self.ranker = OnlineRanker(s.learner_feature_buckets)
        self.learner = Learner(node.redis, self.catalogue, self.ranker)
        self.coengagement = CoEngagement(node.pool, s.coengagement_events_max)
        self.for_you = ForYou(node, self.live_now, self.catalogue, self.coengagement, self.ranker, ForYouLimits(
            s.foryou_candidates_max, s.foryou_exploration_percent, s.foryou_author_items_per_page_max,
            s.foryou_fresh_hours, s.feed_session_seen_max, s.feed_session_ttl_s))
        self.labels = CardLabels()  # other contexts' labels on video cards (the public hook: labels.add)
        self._tasks: list[asyncio.Task[None]] = []
        self._jobs: list[asyncio.Task[None]] = []
        self._upload_checks: list[UploadCheck] = []
        self._ready_listeners: list[ReadyListener] = []

    def add_upload_check(self, check: UploadCheck) -> None:
        """Have `check` see each upload's sound_id and challenge_id before the video is created."""
        self._upload_checks.append(check)

    def add_ready_listener(self, listener: ReadyListener) -> None:
        """Have `listener` told the id of each video that becomes ready on this node (after the feeds took it)."""
        self._ready_listeners.append(listener)

    def add_candidate_source(self, name: str, source: Source) -> None:
        """Another context's For You candidate source (see feeds/sources.py for what a source may do)."""
        self.for_you.add_source(name, source)

    async def check_upload(self, sound_id: int | None, challenge_id: int | None) -> None:
        """Refuse (a Problem) an upload whose references another context says are wrong."""
        for check in self._upload_checks:
            await check(sound_id, challenge_id)

    async def public_videos(self, video_ids: list[int]) -> list[dict[str, Any]]:
        """The videos as `GET /api/videos/{id}` shows them, in the order of `video_ids` (missing ones left out)."""
        found = await videos.videos_by_ids(self.node.pool, video_ids)
        return [found[v].public() for v in video_ids if v in found]

    async def start(self) -> None:
        s = self.node.settings
        await self.holders.start()
        await self.refresh()
        await self.coengagement.retrain()
        self._tasks += [
            asyncio.create_task(_every(s.recording_video_sweep_ms, self.post_recordings), name="feeds-recordings"),
            asyncio.create_task(_every(s.foryou_refresh_ms, self.refresh_in_turn), name="feeds-refresh"),
            asyncio.create_task(_every(s.coengagement_train_interval_s * 1000, self.coengagement.retrain),
                                name="feeds-coengagement"),
            asyncio.create_task(self.learner.run(), name="feeds-learner"),
        ]

    def in_background(self, work: Coroutine[Any, Any, object], name: str) -> None:
        """Run `work` beside the node; stopped with the feeds context."""

        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("%s failed", name)

        self._jobs.append(asyncio.create_task(run(), name=name))

    async def jobs_done(self) -> None:
        """Wait for the work started with `in_background` so far."""
        await asyncio.gather(*self._jobs)

    async def stop(self) -> None:
        await stop_tasks(*self._tasks, *self._jobs)
        await self.processor.stop()
        await self.holders.stop()

    async def refresh(self) -> None:
        """Bring what this node keeps in memory up to date now: the catalogue, trending (computed here), the large
        followings."""
        await self._refresh(self.trending.compute)

    async def refresh_in_turn(self) -> None:
        """`refresh`, with trending computed only when it is this node's turn (else the lists another node shared)."""
        await self._refresh(self.trending.current)

    async def _refresh(self, trending: Callable[[int, int], Awaitable[Scored]]) -> None:
        s = self.node.settings
        now_ms = self.node.clock.now_ms()
        await self.catalogue.load_ready(self.node.today())
        self.catalogue.set_trending(await trending(now_ms, s.foryou_trending_hours))
        self.big_authors = await authors_followed_by_more_than(self.node.pool, s.fanout_followers_max)

    async def for_you_feed(self, viewer: Viewer, cursor: str | None, limit: int) -> dict[str, Any]:
        """A page of the For You feed; the cursor carries the session whose videos are not shown again."""
        page = await self.for_you.page(viewer, cursor, limit)
        await self.labels.label(page["items"])
        self.metrics.pages.labels(feed="for-you").inc()
        return page

    def set_ad_stage(self, stage: AdStage | None, items_per_ad: int) -> None:
        """Let an ads context fill For You ad slots: at most one ad per `items_per_ad` items (0: none)."""
        self.for_you.ads = stage
        self.for_you.ad_slot_interval = items_per_ad

    async def post_recordings(self) -> list[int]:
        """Make videos of the streams that ended with a recording on this node."""
        return await recordings.post_recordings(self.node, self.processor)

    async def record_engagements(self, account: Account, events: list[engagements.Event]) -> engagements.BatchResult:
        """Store a viewer's batch of events (each id once) and stream the new ones to the learners."""
        node = self.node
        result = await engagements.record_batch(node.pool, node.redis, account.id, account.region, events,
                                                node.clock.now_ms(), node.settings.engagement_stream_entries_max)
        self.metrics.engagements.labels(result="accepted").inc(len(result.recorded))
        self.metrics.engagements.labels(result="duplicate").inc(result.duplicates)
        return result

    async def video_ready(self, video_id: int) -> None:
        """A video became playable: it joins the catalogue and its author's followers' timelines."""
        self.metrics.videos_ready.inc()
        await self.catalogue.load_ready(self.node.today(), [video_id])
        video = self.catalogue.videos.get(video_id)
        if video is not None:
            await self.fan_out(video_id, video.author_id)
        for listener in self._ready_listeners:
            try:
                await listener(video_id)
            except Exception:  # another context's bookkeeping; it catches up on its own (see its listener)
                log.exception("a ready-video listener failed for video %s", video_id)

    async def fan_out(self, video_id: int, author_id: int) -> int:
        """Write a video into its author's followers' timelines, unless the author has more followers than
        `fanout_followers_max` (then readers merge it in); how many timelines were written."""
        followers = await followers_of(self.node.pool, author_id)
        if len(followers) > self.node.settings.fanout_followers_max:
            return 0
        written = await self.timelines.fan_out(video_id, followers)
        self.metrics.timeline_writes.inc(written)
        return written

    async def following_feed(self, viewer: Viewer, cursor: str | None, limit: int) -> dict[str, Any]:
        """A page of the Following feed: followed creators live now first (on the first page), then videos."""
        node = self.node
        before = cursors.decode_before(cursor, "following") if cursor else None
        page = await following_video_ids(node.pool, self.timelines, self.big_authors, viewer, before, limit)
        items = [] if before else await cards.live_cards(self.live_now, viewer, followed_only=True,
                                                         count=FOLLOWING_LIVE_CARDS_MAX)
        items += await cards.video_cards(node.pool, self.catalogue, viewer,
                                         [(video_id, "followed") for video_id in page.video_ids], node.today(),
                                         following=True)
        await self.labels.label(items)
        self.metrics.pages.labels(feed="following").inc()
        return {"items": items,
                "next_cursor": cursors.encode_before("following", page.next_before) if page.next_before else None}


async def _every(interval_ms: int, work: Callable[[], Awaitable[object]]) -> None:
    while True:
        await asyncio.sleep(interval_ms / 1000)
        try:
            await work()
        except Exception:
            log.exception("feeds background work failed")
