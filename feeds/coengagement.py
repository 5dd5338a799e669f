"""Co-engagement neighbours: videos the same viewers engaged with. Item factors from alternating least squares on
implicit feedback (`implicit`), searched by cosine similarity in a vector index (`usearch`). Retrained now and
then from PostgreSQL in a worker thread; between trainings the last model answers.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from dataclasses import dataclass

import asyncpg
import numpy as np
import scipy.sparse as sparse
from implicit.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits
from usearch.index import Index

log = logging.getLogger("livecore.feeds.coengagement")

FACTORS = 32
ITERATIONS = 12
REGULARIZATION = 0.05
SEED = 12
# What an event says about a viewer's liking of a video (negative events are the ranker's business).
WEIGHTS_SQL = ("CASE kind WHEN 'like' THEN 3 WHEN 'share' THEN 4 WHEN 'follow' THEN 3 WHEN 'comment' THEN 2"
               " WHEN 'watch' THEN CASE WHEN watch_ratio >= 0.8 THEN 1 ELSE 0 END ELSE 0 END")


@dataclass(frozen=True)
class Neighbours:
    index: Index
    videos: frozenset[int]
    vectors: dict[int, np.ndarray]

    def of(self, video_ids: list[int], per_video: int) -> list[int]:
        """Up to `per_video` neighbours of each video, most similar first, without the videos themselves."""
        known = [v for v in video_ids if v in self.vectors]
        if not known:
            return []
        found: list[int] = []
        matches = self.index.search(np.stack([self.vectors[v] for v in known]), per_video + 1)
        for row in range(len(known)):
            keys = matches.keys[row] if len(known) > 1 else matches.keys
            found += [int(k) for k in keys if int(k) not in video_ids and int(k) not in found]
        return found


async def load_interactions(pool: asyncpg.Pool, events_max: int) -> list[tuple[int, int, float]]:
    rows = await pool.fetch(
        f"SELECT user_id, video_id, sum({WEIGHTS_SQL}) AS weight FROM"
        " (SELECT user_id, video_id, kind, watch_ratio FROM engagements ORDER BY at DESC LIMIT $1) recent"
        " GROUP BY user_id, video_id", events_max)
    return [(r["user_id"], r["video_id"], float(r["weight"])) for r in rows if r["weight"] > 0]


def train(interactions: list[tuple[int, int, float]]) -> Neighbours | None:
    """Fit item factors on (user, video, weight) and index them (blocking: call it from a thread)."""
    if not interactions:
        return None
    users = {u: i for i, u in enumerate(sorted({u for u, _, _ in interactions}))}
    videos = sorted({v for _, v, _ in interactions})
    columns = {v: i for i, v in enumerate(videos)}
    matrix = sparse.csr_matrix(
        ([w for _, _, w in interactions], ([users[u] for u, _, _ in interactions],
                                           [columns[v] for _, v, _ in interactions])),
        shape=(len(users), len(videos)), dtype=np.float32)
    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # implicit's advice about BLAS threads, taken here
        model = AlternatingLeastSquares(factors=FACTORS, iterations=ITERATIONS, regularization=REGULARIZATION,
                                        num_threads=1, random_state=SEED)
        model.fit(matrix, show_progress=False)
    factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)
    index = Index(ndim=FACTORS, metric="cos")
    index.add(np.array(videos, dtype=np.uint64), factors)
    return Neighbours(index, frozenset(videos), {v: factors[i] for i, v in enumerate(videos)})


class CoEngagement:
    def __init__(self, pool: asyncpg.Pool, events_max: int) -> None:
        self.pool = pool
        self.events_max = events_max
        self.neighbours: Neighbours | None = None

    async def retrain(self) -> int:
        """Train on the latest engagement; how many videos the new model knows."""
        interactions = await load_interactions(self.pool, self.events_max)
        trained = await asyncio.to_thread(train, interactions)
        if trained is not None:
            self.neighbours = trained
            log.info("co-engagement model trained on %d interactions, %d videos", len(interactions),
                     len(trained.videos))
        return len(trained.videos) if trained else 0

    def of(self, video_ids: list[int], per_video: int) -> list[int]:
        return self.neighbours.of(video_ids, per_video) if self.neighbours else []
