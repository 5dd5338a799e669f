"""The For You feed, as a pipeline of named stages, in this order:

1. session: the cursor names a session; its seen list (Redis) keeps any video from coming twice in it
2. sources (sources.py): followed creators, co-engagement neighbours, same hashtag, sound or challenge, onboarding
   interests (cold start), trending in the viewer's region, fresh videos, none the session has seen; once a long
   session has used up what they find, the newest of the rest of the catalogue ("older")
3. filters: the rules (rules.py: blocked and not-interested authors, mature videos and minors), own videos
4. scorer: the online ranker (ranker.py) plus small priors for interests and regional trend
5. selector: an exploration budget of fresh videos, author diversity, then by score
6. mixer: live cards (first page) and, every `ad_slot_interval` items, an ad slot when an ads stage is present
"""

from __future__ import annotations

import asyncio
import math
import random
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np

from feeds import cards, cursors, rules
from feeds.catalogue import Catalogue, CatalogueVideo
from feeds.coengagement import CoEngagement
from feeds.ranker import WATCH_FINISHED_RATIO, OnlineRanker
from feeds.sources import SOURCES, Context, Source, candidates, with_source
from feeds.viewers import Viewer
from livecore.http import Problem
from livecore.node import Node

FEED = "for-you"
RECENT_POSITIVE_MAX = 30
RECENT_EVENTS_MAX = 30
COLD_START_EVENTS = 5  # with this many events of the viewer's, the ranker and the priors weigh the same
INTEREST_PRIOR = 0.4
TREND_PRIOR = 0.1
HASHTAG_REPEAT_PENALTY = 0.01  # topic diversity: what each hashtag already on the page costs a video
LIVE_SLOT = 1  # the live card's place on a session's first page
OLDER_SOURCE = "older"  # the reason given for a video no source found, shown once a long session used them up
OLDER_EXAMINED_MAX = 2000
# A session's seen videos are one Redis string of their ids packed like this (appended per page): read with one GET
# and unpacked at once, where a set's members were each parsed and converted in Python on every page.
SEEN_ID_DTYPE = "<i8"

AdStage = Callable[[Viewer, int], Awaitable[dict[str, Any] | None]]  # (viewer, slot) -> an ad item or None


@dataclass(frozen=True)
class ForYouLimits:
    candidates_max: int
    exploration_percent: int
    author_items_max: int
    fresh_hours: int
    seen_max: int
    session_ttl_s: int


def seen_key(user_id: int, session: str) -> str:
    return f"feeds:seen2:{{{user_id}}}:{session}"  # "2": packed ids; a session's older set is not read as a string


class ForYou:
    def __init__(self, node: Node, live_now: cards.LiveNow, catalogue: Catalogue, coengagement: CoEngagement,
                 ranker: OnlineRanker, limits: ForYouLimits) -> None:
        self.node = node
        self.live_now = live_now
        self.catalogue = catalogue
        self.coengagement = coengagement
        self.ranker = ranker
        self.limits = limits
        self.ads: AdStage | None = None
        self.ad_slot_interval = 0
        self.sources: tuple[tuple[str, Source], ...] = SOURCES

    def add_source(self, name: str, source: Source) -> None:
        """Another context's candidate source (reading only memory, like sources.py's), before the broad ones."""
        self.sources = with_source(self.sources, name, source)

    async def page(self, viewer: Viewer, cursor: str | None, limit: int) -> dict[str, Any]:
        session, page_number = _session(cursor, viewer.id) if cursor else (secrets.token_hex(8), 0)
        node, key = self.node, seen_key(viewer.id, session)
        shown, (positive, history) = await asyncio.gather(node.redis.get(key), recent_history(node.pool, viewer.id))
        seen = set(np.frombuffer(shown, dtype=SEEN_ID_DTYPE).tolist()) if shown else set()
        now_ms = node.clock.now_ms()
        context = Context(viewer, positive, now_ms - self.limits.fresh_hours * 3600 * 1000, seen)
        found = candidates(self.catalogue, self.coengagement, context, self.limits.candidates_max, self.sources)
        eligible = [self.catalogue.videos[v] for v in found if self._eligible(viewer, v)]  # none seen
        room = min(limit, self.limits.seen_max - len(seen))
        if 0 < room and len(eligible) <= room:  # a long session used up what the sources find: the rest, newest first
            for video_id in self._older(viewer, seen, found, room + 1 - len(eligible)):
                found[video_id] = OLDER_SOURCE
                eligible.append(self.catalogue.videos[video_id])
        scores = blend_scores(self.ranker, self.catalogue, viewer, eligible, history)
        picked = select(eligible, scores, found, room, context.fresh_since_ms, self.limits,
                        random.Random(f"{session}:{page_number}"))
        if picked:
            async with node.redis.pipeline(transaction=False) as pipe:
                pipe.append(key, np.array([video_id for video_id, _ in picked], dtype=SEEN_ID_DTYPE).tobytes())
                pipe.expire(key, self.limits.session_ttl_s)
                await pipe.execute()
        items = await cards.video_cards(node.pool, self.catalogue, viewer, picked, node.today(), following=False)
        items = await self._mix(viewer, items, first_page=page_number == 0)
        more = bool(picked) and len(eligible) > len(picked)
        return {"items": items,
                "next_cursor": cursors.encode(FEED, s=session, u=viewer.id, p=page_number + 1) if more else None}

    def _older(self, viewer: Viewer, seen: set[int], found: dict[int, str], count: int) -> list[int]:
        """Up to `count` eligible videos no source found, newest first, looking at no more than OLDER_EXAMINED_MAX
        videos not yet seen (a viewer the rules keep from most of the catalogue costs a page no more than that): a
        session ends when that finds nothing, or at `seen_max`."""
        older: list[int] = []
        examined = 0
        for video_id in reversed(self.catalogue.order):
            if len(older) >= count or examined >= OLDER_EXAMINED_MAX:
                break
            if video_id in seen or video_id in found:
                continue
            examined += 1
            if self._eligible(viewer, video_id):
                older.append(video_id)
        return older

    def _eligible(self, viewer: Viewer, video_id: int) -> bool:
        video = self.catalogue.videos.get(video_id)
        return (video is not None and video.author_id != viewer.id
                and rules.may_see(viewer, video, following=False))

    async def _mix(self, viewer: Viewer, items: list[dict[str, Any]], first_page: bool) -> list[dict[str, Any]]:
        if first_page:
            live = await cards.live_cards(self.live_now, viewer, followed_only=False, count=1)
            items[LIVE_SLOT:LIVE_SLOT] = live
        ads = self.ads
        if ads is not None and self.ad_slot_interval:
            items = await insert_ads(items, self.ad_slot_interval, lambda slot: ads(viewer, slot))
        return items


async def insert_ads(items: list[dict[str, Any]], interval: int,
                     ad_for_slot: Callable[[int], Awaitable[dict[str, Any] | None]]) -> list[dict[str, Any]]:
    """The ad-load rule: an ad may go before every `interval`-th item, so at most one per `interval` items, never
    first and never two in a row; the ads stage decides whether each slot gets one (who may see which ad is its
    rule, minors included)."""
    mixed: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if index and index % interval == 0 and (ad := await ad_for_slot(index)):
            mixed.append(ad)
        mixed.append(item)
    return mixed


def blend_scores(ranker: OnlineRanker, catalogue: Catalogue, viewer: Viewer, eligible: list[CatalogueVideo],
                 history: int) -> dict[int, float]:
    """The ranker's probability blended with a prior from onboarding interests and regional trend; the prior
    weighs all for a viewer with no events yet (cold start) and less with each event of theirs."""
    learned = ranker.scores(viewer.id, viewer.region, eligible)
    trend = {v: i for i, v in enumerate(catalogue.trending.get(viewer.region, []))}
    interests = set(viewer.interests)
    prior_weight = COLD_START_EVENTS / (COLD_START_EVENTS + history)
    scores = {}
    for video in eligible:
        prior = 0.5 + (INTEREST_PRIOR if interests.intersection(video.hashtags) else 0.0)
        if video.id in trend:
            prior += TREND_PRIOR / (1 + trend[video.id])
        scores[video.id] = prior_weight * prior + (1 - prior_weight) * learned[video.id]
    return scores


def select(eligible: list[CatalogueVideo], scores: dict[int, float], sources: dict[int, str], count: int,
           fresh_since_ms: int, limits: ForYouLimits, rng: random.Random) -> list[tuple[int, str]]:
    """`count` videos: an exploration share drawn at random from fresh ones, the rest by score, each hashtag
    already on the page costing HASHTAG_REPEAT_PENALTY; at most `author_items_max` per author while other authors
    are left; exploration picks spread through the page."""
    if count <= 0:
        return []
    per_author: Counter[int] = Counter()
    explore_count = math.ceil(count * limits.exploration_percent / 100)
    fresh = [v for v in eligible if v.created_ms >= fresh_since_ms]
    rng.shuffle(fresh)
    explored: list[CatalogueVideo] = []
    for video in fresh:
        if len(explored) >= explore_count:
            break
        if per_author[video.author_id] < limits.author_items_max:
            per_author[video.author_id] += 1
            explored.append(video)
    taken = {v.id for v in explored}
    best = _best(eligible, scores, count - len(explored), per_author, limits.author_items_max, taken)
    if len(best) + len(explored) < count:  # too few authors left: fill the page rather than end the session
        best += _best(eligible, scores, count - len(explored) - len(best), per_author, count, taken)
    page: list[tuple[int, str]] = [(v.id, sources[v.id]) for v in best]
    step = max(1, count // max(1, len(explored)))
    for n, video in enumerate(explored):
        page.insert(min(len(page), n * step + step - 1), (video.id, "fresh"))
    return page[:count]


def _best(eligible: list[CatalogueVideo], scores: dict[int, float], count: int, per_author: Counter[int],
          author_max: int, taken: set[int]) -> list[CatalogueVideo]:
    """Greedily the highest score, less HASHTAG_REPEAT_PENALTY for each video on the page sharing a hashtag."""
    left = sorted((v for v in eligible if v.id not in taken), key=lambda v: (-scores[v.id], -v.id))
    tags: Counter[str] = Counter()
    found: list[CatalogueVideo] = []
    while len(found) < count:
        best, best_score = None, -math.inf
        for video in left:
            if per_author[video.author_id] >= author_max:
                continue
            if scores[video.id] <= best_score:
                break  # sorted by raw score: nothing further can win
            score = scores[video.id] - HASHTAG_REPEAT_PENALTY * sum(tags[t] for t in video.hashtags)
            if score > best_score:
                best, best_score = video, score
        if best is None:
            break
        left.remove(best)
        found.append(best)
        taken.add(best.id)
        per_author[best.author_id] += 1
        tags.update(best.hashtags)
    return found


async def recent_history(pool: asyncpg.Pool, user_id: int) -> tuple[list[int], int]:
    """The videos the viewer engaged with lately (newest first), and how many of their latest events say
    something (at most RECENT_EVENTS_MAX)."""
    rows = await pool.fetch(
        "SELECT video_id, kind IN ('like', 'share', 'follow', 'comment') OR (kind = 'watch' AND watch_ratio >= $2)"
        " AS positive FROM engagements WHERE user_id = $1 AND kind <> 'seen' ORDER BY at DESC LIMIT $3",
        user_id, WATCH_FINISHED_RATIO, RECENT_EVENTS_MAX)
    return list(dict.fromkeys(r["video_id"] for r in rows if r["positive"]))[:RECENT_POSITIVE_MAX], len(rows)


def _session(cursor: str, user_id: int) -> tuple[str, int]:
    position = cursors.decode(cursor, FEED)
    session, page, owner = position.get("s"), position.get("p"), position.get("u")
    if (not isinstance(session, str) or len(session) != 16 or not all(c in "0123456789abcdef" for c in session)
            or not isinstance(page, int) or isinstance(page, bool) or not 1 <= page <= 1_000_000
            or owner != user_id):
        raise Problem(400, "bad-cursor", "cursor: not a cursor of your For You feed; use next_cursor as it was given",
                      field="cursor")
    return session, page
