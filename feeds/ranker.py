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
VIDEO_FEATURES_CACHED_MAX = 200_000  # videos whose hashed features are kept; all forgotten at once past this


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
        self._videos: dict[int, dict[int, float]] = {}

    def features(self, user_id: int, region: str, video: CatalogueVideo) -> dict[int, float]:
        return self._features(_Viewing(self, user_id, region), video)

    def _features(self, viewing: _Viewing, video: CatalogueVideo) -> dict[int, float]:
        found = dict(self._video_features(video))
        for slot, value in viewing.slots(video):
            found[slot] = found.get(slot, 0.0) + value
        return found

    def _video_features(self, video: CatalogueVideo) -> dict[int, float]:
        """What describes the video whoever watches it (kept per video: names hashed once)."""
        cached = self._videos.get(video.id)
        if cached is None:
            if len(self._videos) >= VIDEO_FEATURES_CACHED_MAX:
                self._videos.clear()
            names = [f"v:{video.id}", f"a:{video.author_id}"]
            if video.sound_id is not None:
                names.append(f"s:{video.sound_id}")
            if video.challenge_id is not None:
                names.append(f"c:{video.challenge_id}")
            cached = {self.slot(name): 1.0 for name in names}
            for tag in video.hashtags:
                tag_slot = self.slot(f"t:{tag}")
                cached[tag_slot] = cached.get(tag_slot, 0.0) + tag_weight(video)
            self._videos[video.id] = cached
        return cached

    def slot(self, name: str) -> int:
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
        viewing = _Viewing(self, user_id, region)
        return {v.id: predict(self._features(viewing, v)).get(True, 0.5) for v in videos}


def tag_weight(video: CatalogueVideo) -> float:
    """Each hashtag's share of a video's hashtag features (1/sqrt(n): many hashtags do not add up to more)."""
    return 1 / math.sqrt(len(video.hashtags)) if video.hashtags else 0.0


class _Viewing:
    """The per-viewer features of one viewer in one region, hashed once per author, hashtag, sound and challenge
    however many videos share them."""

    def __init__(self, ranker: OnlineRanker, user_id: int, region: str) -> None:
        self.slot = ranker.slot
        self.prefix = f"u:{user_id}:"
        self.region = f"r:{region}:t:"
        self.authors: dict[int, int] = {}
        self.tags: dict[str, tuple[int, int]] = {}
        self.others: dict[str, int] = {}

    def slots(self, video: CatalogueVideo) -> list[tuple[int, float]]:
        author = self.authors.get(video.author_id)
        if author is None:
            author = self.authors[video.author_id] = self.slot(f"{self.prefix}a:{video.author_id}")
        found = [(author, 1.0)]
        if video.sound_id is not None:
            found.append((self._other(f"s:{video.sound_id}"), 1.0))
        if video.challenge_id is not None:
            found.append((self._other(f"c:{video.challenge_id}"), 1.0))
        if video.hashtags:
            weight = 1 / math.sqrt(len(video.hashtags))
            for tag in video.hashtags:
                pair = self.tags.get(tag)
                if pair is None:
                    pair = self.tags[tag] = (self.slot(f"{self.prefix}t:{tag}"), self.slot(f"{self.region}{tag}"))
                found += ((pair[0], weight), (pair[1], weight))
        return found

    def _other(self, key: str) -> int:
        slot = self.others.get(key)
        if slot is None:
            slot = self.others[key] = self.slot(self.prefix + key)
        return slot
