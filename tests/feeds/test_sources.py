"""For You's candidate sources over an in-memory catalogue: a session goes deeper into the broad sources instead of
being offered what it has seen."""

from __future__ import annotations

from feeds.catalogue import Catalogue, CatalogueVideo
from feeds.coengagement import CoEngagement
from feeds.sources import FRESH_MAX, TRENDING_MAX, Context, candidates, fresh, trending
from feeds.viewers import Viewer

NOW_MS = 1_000_000_000_000
VIEWER = Viewer(id=1, adult=True, region="US", language="en", interests=(), following=frozenset(),
                excluded=frozenset(), blocked=frozenset())


def _catalogue(count: int) -> Catalogue:
    catalogue = Catalogue(None, videos_max=count)
    for video_id in range(1, count + 1):  # one a minute, the newest last
        catalogue.add(CatalogueVideo(video_id, 100 + video_id, (), None, None, False, False,
                                     NOW_MS - (count - video_id) * 60_000))
    catalogue.set_trending({"US": [(v, float(v)) for v in range(1, count + 1)]})  # the highest id trends most
    return catalogue


def test_the_broad_sources_skip_what_the_session_has_seen_and_go_deeper() -> None:
    catalogue = _catalogue(3 * TRENDING_MAX)
    coengagement = CoEngagement(None, 0)  # type: ignore[arg-type]
    first = Context(VIEWER, [], fresh_since_ms=0)
    seen = set(trending(catalogue, coengagement, first)) | set(fresh(catalogue, coengagement, first))
    later = Context(VIEWER, [], fresh_since_ms=0, seen=frozenset(seen))
    deeper_trending, deeper_fresh = trending(catalogue, coengagement, later), fresh(catalogue, coengagement, later)
    assert len(deeper_trending) == TRENDING_MAX and len(deeper_fresh) == FRESH_MAX
    assert not (set(deeper_trending) | set(deeper_fresh)) & seen
    found = candidates(catalogue, coengagement, later, count_max=400)
    assert found and not set(found) & seen


def test_fresh_stops_at_the_fresh_window() -> None:
    catalogue = _catalogue(50)
    coengagement = CoEngagement(None, 0)  # type: ignore[arg-type]
    context = Context(VIEWER, [], fresh_since_ms=NOW_MS - 9 * 60_000, seen=frozenset({50}))
    assert fresh(catalogue, coengagement, context) == list(range(49, 40, -1))  # ten minutes made, the newest seen
