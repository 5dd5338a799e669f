"""Top-K metrics of recommendation lists against what each viewer went on to engage with."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Scores:
    recall: float
    ndcg: float
    coverage: float
    novelty: float
    users: int


def score_lists(lists: dict[int, list[int]], relevant: dict[int, set[int]], catalogue_size: int,
                popularity: dict[int, int], population: int, k: int) -> Scores:
    """recall@k and NDCG@k (binary relevance) averaged over viewers; catalogue coverage (share of videos recommended
    to anyone); novelty (mean self-information, -log2 of the share of viewers who had engaged with a recommended
    video, smoothed)."""
    recalls, ndcgs, informations = [], [], []
    recommended: set[int] = set()
    for user_id, wanted in relevant.items():
        top = lists.get(user_id, [])[:k]
        recommended.update(top)
        hits = [rank for rank, video_id in enumerate(top) if video_id in wanted]
        recalls.append(len(hits) / len(wanted))
        ideal = sum(1 / math.log2(rank + 2) for rank in range(min(len(wanted), k)))
        ndcgs.append(sum(1 / math.log2(rank + 2) for rank in hits) / ideal)
        informations += [-math.log2((popularity.get(v, 0) + 1) / (population + 1)) for v in top]
    count = len(relevant) or 1
    return Scores(sum(recalls) / count, sum(ndcgs) / count, len(recommended) / max(1, catalogue_size),
                  sum(informations) / max(1, len(informations)), len(relevant))
