"""For You candidate sources: each proposes video ids for one viewer with the reason it would give.

Every source reads only memory (the catalogue, the co-engagement model) and what `Context` carries, so a page costs
no query per source.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Set
from dataclasses import dataclass

from feeds.catalogue import Catalogue
from feeds.coengagement import CoEngagement
from feeds.viewers import Viewer

PER_AUTHOR = 3
PER_TAG = 30
NEIGHBOURS_PER_VIDEO = 10
TRENDING_MAX = 150
FRESH_MAX = 100


@dataclass(frozen=True)
class Context:
    viewer: Viewer
    recent_positive: list[int]  # videos the viewer engaged with lately, newest first
    fresh_since_ms: int
    seen: Set[int] = frozenset()  # shown earlier in this session: never a candidate again


Source = Callable[[Catalogue, CoEngagement, Context], list[int]]


def followed(catalogue: Catalogue, _: CoEngagement, context: Context) -> list[int]:
    found: list[int] = []
    for author_id in context.viewer.following:
        found += catalogue.by_author.get(author_id, [])[-PER_AUTHOR:]
    return found


def trending(catalogue: Catalogue, _: CoEngagement, context: Context) -> list[int]:
    """What trends in the viewer's region (or everywhere), the session's first TRENDING_MAX not yet seen: deeper
    into the list as the session goes on."""
    regional = catalogue.trending.get(context.viewer.region, [])
    return _unseen(regional or catalogue.trending_everywhere, context.seen, TRENDING_MAX)


def neighbours(_: Catalogue, coengagement: CoEngagement, context: Context) -> list[int]:
    return coengagement.of(context.recent_positive[:10], NEIGHBOURS_PER_VIDEO)


def hashtag(catalogue: Catalogue, _: CoEngagement, context: Context) -> list[int]:
    """The most engaging and the newest videos of the hashtags the viewer engaged with lately."""
    tags = _recent(catalogue, context, lambda v: v.hashtags)
    found: list[int] = []
    for tag in tags:
        found += catalogue.trending_by_hashtag.get(tag, [])[:PER_TAG]
    return found + _newest_each(catalogue.by_hashtag, tags)


def sound(catalogue: Catalogue, _: CoEngagement, context: Context) -> list[int]:
    sounds = _recent(catalogue, context, lambda v: (v.sound_id,) if v.sound_id is not None else ())
    return _newest_each(catalogue.by_sound, sounds)


def challenge(catalogue: Catalogue, _: CoEngagement, context: Context) -> list[int]:
    challenges = _recent(catalogue, context, lambda v: (v.challenge_id,) if v.challenge_id is not None else ())
    return _newest_each(catalogue.by_challenge, challenges)


def interests(catalogue: Catalogue, _: CoEngagement, context: Context) -> list[int]:
    """Cold start: the hashtags named as interests at sign-up, their most engaging videos and their newest."""
    found: list[int] = []
    for tag in context.viewer.interests:
        found += catalogue.trending_by_hashtag.get(tag, [])[:PER_TAG]
    return found + _newest_each(catalogue.by_hashtag, list(context.viewer.interests))


def fresh(catalogue: Catalogue, _: CoEngagement, context: Context) -> list[int]:
    return _unseen(catalogue.newest_since(context.fresh_since_ms), context.seen, FRESH_MAX)


# The order in which a video found by several sources is credited to one. Other contexts add theirs with
# `with_source` (through `Feeds.add_candidate_source`), before the broad ones.
SOURCES: tuple[tuple[str, Source], ...] = (
    ("followed", followed), ("neighbours", neighbours), ("hashtag", hashtag), ("sound", sound),
    ("challenge", challenge), ("interests", interests), ("trending", trending), ("fresh", fresh),
)


BROAD_SOURCES = ("trending", "fresh")  # sources that find videos for anyone: added sources go before these


def with_source(sources: tuple[tuple[str, Source], ...], name: str, source: Source) -> tuple[tuple[str, Source], ...]:
    """`sources` with `source` (named `name`, which must be new) placed before the broad sources."""
    if any(existing == name for existing, _ in sources):
        raise ValueError(f"a For You candidate source named {name!r} is there already")
    at = next((i for i, (existing, _) in enumerate(sources) if existing in BROAD_SOURCES), len(sources))
    return (*sources[:at], (name, source), *sources[at:])


def candidates(catalogue: Catalogue, coengagement: CoEngagement, context: Context,
               count_max: int, sources: tuple[tuple[str, Source], ...] = SOURCES) -> dict[int, str]:
    """Video id -> the source that found it first, at most `count_max`, none the session has seen; room for
    FRESH_MAX fresh videos is kept whatever the other sources find, so exploration always has new videos to choose
    from."""
    found: dict[int, str] = {}
    for name, source in sources:
        limit = count_max if name == "fresh" else max(0, count_max - FRESH_MAX)
        for video_id in source(catalogue, coengagement, context):
            if len(found) >= limit:
                break
            if video_id not in context.seen:
                found.setdefault(video_id, name)
    return found


def _unseen(video_ids: Iterable[int], seen: Set[int], count: int) -> list[int]:
    found = []
    for video_id in video_ids:
        if len(found) >= count:
            break
        if video_id not in seen:
            found.append(video_id)
    return found


def _recent(catalogue: Catalogue, context: Context, keys: Callable) -> list:  # type: ignore[type-arg]
    seen: list = []  # type: ignore[type-arg]
    for video_id in context.recent_positive:
        video = catalogue.videos.get(video_id)
        for key in keys(video) if video else ():
            if key not in seen:
                seen.append(key)
    return seen


def _newest_each(index: dict, keys: list) -> list[int]:  # type: ignore[type-arg]
    found: list[int] = []
    for key in keys:
        found += reversed(index.get(key, [])[-PER_TAG:])
    return found
