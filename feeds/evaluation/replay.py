"""Offline replay: learn from the log up to a time cut, recommend K videos to each viewer, and compare with what
they engaged with after the cut. The ranker runs the production For You stages (sources, the online ranker fed
the training events in order, the co-engagement model, blending and selection); the baseline recommends what was
most engaged with in the viewer's region."""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass

from feeds.catalogue import Catalogue, CatalogueVideo
from feeds.coengagement import CoEngagement, train
from feeds.evaluation.dataset import Dataset, Interaction
from feeds.evaluation.metrics import Scores, score_lists
from feeds.foryou import RECENT_EVENTS_MAX, RECENT_POSITIVE_MAX, ForYouLimits, blend_scores, select
from feeds.ranker import WATCH_FINISHED_RATIO, Example, OnlineRanker
from feeds.sources import Context, candidates
from feeds.viewers import Viewer

FEATURE_BUCKETS = 1 << 20
TRENDING_MAX = 500
FRESH_HOURS = 48


@dataclass(frozen=True)
class Report:
    description: str
    k: int
    train_interactions: int
    test_interactions: int
    ranker: Scores
    baseline: Scores


def positive(interaction: Interaction) -> bool:
    return interaction.liked or interaction.watch_ratio >= WATCH_FINISHED_RATIO


def evaluate(dataset: Dataset, *, k: int = 50, train_share: float = 0.8, candidates_max: int = 400,
             exploration_percent: int = 0, seed: int = 1) -> Report:
    log = dataset.interactions
    cut = log[min(len(log) - 1, int(len(log) * train_share))].at_ms
    training = [i for i in log if i.at_ms < cut]
    relevant: dict[int, set[int]] = defaultdict(set)
    seen: dict[int, set[int]] = defaultdict(set)
    for interaction in training:
        seen[interaction.user_id].add(interaction.video_id)
    for interaction in log:
        if interaction.at_ms >= cut and positive(interaction) and interaction.video_id not in seen[interaction.user_id]:
            relevant[interaction.user_id].add(interaction.video_id)
    relevant = {u: wanted for u, wanted in relevant.items() if u in seen}
    catalogue = _catalogue(dataset, cut, training)
    ranker = OnlineRanker(FEATURE_BUCKETS)
    for interaction in training:
        video = catalogue.videos.get(interaction.video_id)
        if video is not None:
            region = dataset.regions.get(interaction.user_id, "")
            ranker.learn(Example(interaction.user_id, region, "watch", interaction.watch_ratio), video)
            if interaction.liked:
                ranker.learn(Example(interaction.user_id, region, "like", None), video)
    coengagement = CoEngagement(None, 0)  # type: ignore[arg-type]
    coengagement.neighbours = train([(i.user_id, i.video_id, 3.0 if i.liked else 1.0)
                                     for i in training if positive(i)])
    limits = ForYouLimits(candidates_max, exploration_percent, max(1, math.ceil(k / 10)), FRESH_HOURS, k, 0)
    history = _histories(training)
    ranked: dict[int, list[int]] = {}
    rng = random.Random(seed)
    for user_id in relevant:
        viewer = Viewer(user_id, True, dataset.regions.get(user_id, ""), "", dataset.interests.get(user_id, ()),
                        frozenset(), frozenset(), frozenset())
        positives, events = history[user_id]
        context = Context(viewer, positives, cut - FRESH_HOURS * 3600 * 1000)
        found = candidates(catalogue, coengagement, context, candidates_max)
        eligible = [catalogue.videos[v] for v in found if v not in seen[user_id]]
        scores = blend_scores(ranker, catalogue, viewer, eligible, events)
        ranked[user_id] = [v for v, _ in select(eligible, scores, found, k, context.fresh_since_ms, limits, rng)]
    baseline = {u: [v for v in catalogue.trending.get(dataset.regions.get(u, ""), []) if v not in seen[u]][:k]
                for u in relevant}
    popularity = Counter(v for u, videos in seen.items() for v in videos)
    size = len(catalogue.videos)
    return Report(dataset.description, k, len(training), len(log) - len(training),
                  score_lists(ranked, relevant, size, popularity, len(seen), k),
                  score_lists(baseline, relevant, size, popularity, len(seen), k))


def _catalogue(dataset: Dataset, cut: int, training: list[Interaction]) -> Catalogue:
    """The videos made before the cut, and per region the most engaged with in training."""
    catalogue = Catalogue(None, len(dataset.videos) + 1)
    for info in sorted(dataset.videos.values(), key=lambda v: v.id):
        if info.created_ms < cut:
            catalogue.add(CatalogueVideo(info.id, info.author_id, info.hashtags, None, None, False, False,
                                         info.created_ms))
    engaged: dict[str, Counter[int]] = defaultdict(Counter)
    for interaction in training:
        engaged[dataset.regions.get(interaction.user_id, "")][interaction.video_id] += (
            3 * interaction.liked + min(interaction.watch_ratio, 2.0))
    catalogue.set_trending({region: counts.most_common(TRENDING_MAX) for region, counts in engaged.items()})
    return catalogue


def _histories(training: list[Interaction]) -> dict[int, tuple[list[int], int]]:
    """Per viewer, as the live feed reads it: recent positive videos (newest first) and recent event count."""
    by_user: dict[int, list[Interaction]] = defaultdict(list)
    for interaction in training:
        by_user[interaction.user_id].append(interaction)
    found: dict[int, tuple[list[int], int]] = defaultdict(lambda: ([], 0))
    for user_id, events in by_user.items():
        latest = events[::-1][:RECENT_EVENTS_MAX]
        positives = list(dict.fromkeys(i.video_id for i in latest if positive(i)))[:RECENT_POSITIVE_MAX]
        found[user_id] = (positives, len(latest))
    return found
