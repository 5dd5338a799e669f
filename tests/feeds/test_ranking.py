"""The ranker and the co-engagement model on their own: what they learn from events, without HTTP."""

from __future__ import annotations

from feeds.catalogue import CatalogueVideo
from feeds.coengagement import train
from feeds.ranker import Example, OnlineRanker, label_of


def _video(video_id: int, author_id: int, *tags: str) -> CatalogueVideo:
    return CatalogueVideo(video_id, author_id, tags, None, None, False, False, 0)


def test_finishing_a_hashtag_raises_it_for_that_viewer_only() -> None:
    ranker = OnlineRanker(1 << 16)
    cooking, cars = _video(1, 10, "cooking"), _video(2, 11, "cars")
    new_cooking, new_cars = _video(3, 12, "cooking"), _video(4, 13, "cars")
    for _ in range(5):
        ranker.learn(Example(7, "US", "watch", 1.0), cooking)
        ranker.learn(Example(7, "US", "watch", 0.05), cars)
    mine = ranker.scores(7, "US", [new_cooking, new_cars])
    theirs = ranker.scores(8, "DE", [new_cooking, new_cars])
    assert mine[3] > mine[4] + 0.1  # unseen videos, known only by their hashtag
    assert abs(theirs[3] - theirs[4]) < abs(mine[3] - mine[4])


def test_one_not_interested_outweighs_several_completions() -> None:
    ranker = OnlineRanker(1 << 16)
    video = _video(1, 10, "dance")
    for _ in range(3):
        ranker.learn(Example(7, "US", "watch", 1.0), video)
    liked = ranker.scores(7, "US", [video])[1]
    ranker.learn(Example(7, "US", "not_interested", None), video)
    assert liked > 0.5 > ranker.scores(7, "US", [video])[1]


def test_events_without_a_signal_teach_nothing() -> None:
    assert label_of(Example(1, "US", "seen", None)) is None
    assert label_of(Example(1, "US", "watch", 0.5)) is None
    assert label_of(Example(1, "US", "report", None)) == (False, 12.0)
    ranker = OnlineRanker(1 << 10)
    assert not ranker.learn(Example(1, "US", "seen", None), _video(1, 2))
    assert ranker.examples == 0


def test_co_engagement_neighbours_are_what_the_same_viewers_liked() -> None:
    # Viewers 1-20 like videos 100-104, viewers 21-40 like videos 200-204: two tastes that never mix.
    interactions = [(u, v, 3.0) for u in range(1, 21) for v in range(100, 105)]
    interactions += [(u, v, 3.0) for u in range(21, 41) for v in range(200, 205)]
    neighbours = train(interactions)
    assert neighbours is not None
    assert set(neighbours.of([100], 4)) == {101, 102, 103, 104}
    assert set(neighbours.of([200, 201], 3)) <= {202, 203, 204}
    assert neighbours.of([999], 3) == []
    assert train([]) is None
