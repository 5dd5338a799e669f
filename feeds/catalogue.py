"""The ready videos each node keeps in memory for ranking: who made them, their hashtags, sound and challenge,
how fresh they are, and what trends in each region. Bounded (the newest `foryou_catalogue_videos_max`), brought up
to date from PostgreSQL every `foryou_refresh_ms` and at once when a video becomes ready on this node; its trending
lists come from feeds/trending.py.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg

from livecore.accounts.accounts import ADULT_AGE_YEARS

TRENDING_PER_REGION_MAX = 500
TRENDING_PER_HASHTAG_MAX = 100
OVERLAP_S = 5  # videos whose ready time is this close to the last refresh are read again (commit order)


@dataclass(frozen=True)
class CatalogueVideo:
    id: int
    author_id: int
    hashtags: tuple[str, ...]
    sound_id: int | None
    challenge_id: int | None
    mature: bool
    author_minor: bool
    created_ms: int


class Catalogue:
    def __init__(self, pool: asyncpg.Pool | None, videos_max: int) -> None:
        self.pool = pool
        self.videos_max = videos_max
        self.videos: dict[int, CatalogueVideo] = {}
        self.order: list[int] = []  # the ids, ascending
        self.by_author: dict[int, list[int]] = defaultdict(list)
        self.by_hashtag: dict[str, list[int]] = defaultdict(list)
        self.by_sound: dict[int, list[int]] = defaultdict(list)
        self.by_challenge: dict[int, list[int]] = defaultdict(list)
        self.trending: dict[str, list[int]] = {}  # region -> video ids, most engaging first
        self.trending_everywhere: list[int] = []
        self.trending_by_hashtag: dict[str, list[int]] = {}
        self._ready_since: dt.datetime | None = None

    async def load_ready(self, today: dt.date, video_ids: list[int] | None = None) -> None:
        """Add the videos that became ready since the last load (or exactly `video_ids`)."""
        query = ("SELECT v.id, v.author_id, v.hashtags, v.sound_id, v.challenge_id, v.mature, v.created_at,"
                 " v.ready_at, a.birth_date FROM videos v JOIN accounts a ON a.id = v.author_id"
                 " WHERE v.state = 'ready'")
        assert self.pool is not None, "a catalogue without a database is filled with add()"
        read_at = None if video_ids is not None else await self.pool.fetchval("SELECT now()")
        if video_ids is not None:
            rows = await self.pool.fetch(query + " AND v.id = ANY($1)", video_ids)
        elif self._ready_since is None:
            rows = await self.pool.fetch(query + " ORDER BY v.id DESC LIMIT $1", self.videos_max)
        else:
            rows = await self.pool.fetch(query + " AND v.ready_at >= $1", self._ready_since)
        for row in sorted(rows, key=lambda r: r["id"]):
            if row["id"] not in self.videos:  # the overlap reads some again
                self.add(CatalogueVideo(
                    row["id"], row["author_id"], tuple(row["hashtags"]), row["sound_id"], row["challenge_id"],
                    row["mature"], _minor(row["birth_date"], today), int(row["created_at"].timestamp() * 1000)))
        if read_at is not None:
            # Everything made ready more than OVERLAP_S before this read was committed by then and is read now:
            # the next read starts there (not at the newest ready_at, which would read the same videos on every
            # refresh while nothing new becomes ready).
            self._ready_since = read_at - dt.timedelta(seconds=OVERLAP_S)
        self._evict()

    def add(self, video: CatalogueVideo) -> None:
        if video.id in self.videos:
            return
        self.videos[video.id] = video
        bisect.insort(self.order, video.id)
        self.by_author[video.author_id].append(video.id)
        for tag in video.hashtags:
            self.by_hashtag[tag].append(video.id)
        if video.sound_id is not None:
            self.by_sound[video.sound_id].append(video.id)
        if video.challenge_id is not None:
            self.by_challenge[video.challenge_id].append(video.id)

    def _evict(self) -> None:
        if len(self.videos) <= self.videos_max:
            return
        evicted, self.order = self.order[:len(self.order) - self.videos_max], self.order[-self.videos_max:]
        for video_id in evicted:
            video = self.videos.pop(video_id)
            _remove(self.by_author, video.author_id, video_id)
            for tag in video.hashtags:
                _remove(self.by_hashtag, tag, video_id)
            if video.sound_id is not None:
                _remove(self.by_sound, video.sound_id, video_id)
            if video.challenge_id is not None:
                _remove(self.by_challenge, video.challenge_id, video_id)

    def set_trending(self, scored: dict[str, list[tuple[int, float]]]) -> None:
        """What trends: per region (video, score) most engaging first; from them the lists everywhere and per
        hashtag."""
        self.trending = {region: [v for v, _ in pairs[:TRENDING_PER_REGION_MAX]] for region, pairs in scored.items()}
        total: dict[int, float] = defaultdict(float)
        for pairs in scored.values():
            for video_id, score in pairs:
                total[video_id] += score
        ordered = sorted(total, key=lambda v: -total[v])
        self.trending_everywhere = ordered[:TRENDING_PER_REGION_MAX]
        by_hashtag: dict[str, list[int]] = defaultdict(list)
        for video_id in ordered:
            video = self.videos.get(video_id)
            for tag in video.hashtags if video else ():
                if len(by_hashtag[tag]) < TRENDING_PER_HASHTAG_MAX:
                    by_hashtag[tag].append(video_id)
        self.trending_by_hashtag = dict(by_hashtag)

    def newest_since(self, since_ms: int) -> Iterator[int]:
        """The ids of the videos made at or after `since_ms`, newest first."""
        for video_id in reversed(self.order):
            if self.videos[video_id].created_ms < since_ms:
                return
            yield video_id


def _remove(index: dict, key: object, video_id: int) -> None:  # type: ignore[type-arg]
    ids = index.get(key)
    if ids is not None:
        ids.remove(video_id)
        if not ids:
            del index[key]


def _minor(birth_date: dt.date, today: dt.date) -> bool:
    years = today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))
    return years < ADULT_AGE_YEARS

