"""The For You ranker: a logistic regression (river) that learns online, one engagement event at a time, how
likely a viewer is to engage with a video.

Features are sparse and hashed into `learner_feature_buckets` slots (bounded memory however many viewers and
videos): the video, its author, hashtags and sound, on their own (what everyone likes), per viewer (what this viewer
likes) and per region. Labels come from what viewers do; negative signals weigh much more than positive ones, so
one "not interested" outweighs several idle completions.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from river import linear_model, optim

from feeds.catalogue import CatalogueVideo

LEARNING_RATE = 0.2
L2 = 0.0
# (label, weight) of each kind of event; watch is labelled by how much of the video was watched.
LABELS: dict[str, tuple[bool, float]] = {
    "like": (True, 2.0), "share": (True, 3.0), "comment": (True, 1.5), "follow": (True, 3.0),
    "unlike": (False, 2.0), "not_interested": (False, 8.0), "report": (False, 12.0),
}
WATCH_FINISHED_RATIO = 0.8  # watched this much or more: a positive example
WATCH_SKIPPED_RATIO = 0.25  # less than this: a negative one
WATCH_WEIGHT = 1.0


@dataclass(frozen=True)
class Example:
    """One thing a viewer did, as the ranker learns it."""

    user_id: int
    region: str
    kind: str
    watch_ratio: float | None


def label_of(example: Example) -> tuple[bool, float] | None:
    """(engaged, weight) for an event, or None when it says nothing (seen, a watch in the middle)."""
    if example.kind in LABELS:
        return LABELS[example.kind]
    if example.kind == "watch" and example.watch_ratio is not None:
        if example.watch_ratio >= WATCH_FINISHED_RATIO:
            return True, WATCH_WEIGHT
        if example.watch_ratio < WATCH_SKIPPED_RATIO:
            return False, WATCH_WEIGHT
    return None


class OnlineRanker:
    def __init__(self, buckets: int) -> None:
        self.buckets = buckets
        self.model = linear_model.LogisticRegression(optimizer=optim.SGD(LEARNING_RATE), l2=L2)
        self.examples = 0

    def features(self, user_id: int, region: str, video: CatalogueVideo) -> dict[int, float]:
        names = [f"v:{video.id}", f"a:{video.author_id}", f"u:{user_id}:a:{video.author_id}"]
        if video.sound_id is not None:
            names += [f"s:{video.sound_id}", f"u:{user_id}:s:{video.sound_id}"]
        if video.challenge_id is not None:
            names += [f"c:{video.challenge_id}", f"u:{user_id}:c:{video.challenge_id}"]
        tags = video.hashtags
        weight = 1 / math.sqrt(len(tags)) if tags else 0.0
        found = {self._slot(name): 1.0 for name in names}
        for tag in tags:
            for name in (f"t:{tag}", f"u:{user_id}:t:{tag}", f"r:{region}:t:{tag}"):
                slot = self._slot(name)
                found[slot] = found.get(slot, 0.0) + weight
        return found

    def _slot(self, name: str) -> int:
        return zlib.crc32(name.encode()) & (self.buckets - 1)

    def learn(self, example: Example, video: CatalogueVideo) -> bool:
        """Learn from one event; False when the event carries no label."""
        labelled = label_of(example)
        if labelled is None:
            return False
        engaged, weight = labelled
        self.model.learn_one(self.features(example.user_id, example.region, video), engaged, w=weight)
        self.examples += 1
        return True

    def scores(self, user_id: int, region: str, videos: Iterable[CatalogueVideo]) -> dict[int, float]:
        """The probability that the viewer engages with each video."""
        predict = self.model.predict_proba_one
        return {v.id: predict(self.features(user_id, region, v)).get(True, 0.5) for v in videos}
