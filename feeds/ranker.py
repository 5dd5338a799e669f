"""The For You ranker: a logistic regression (river) that learns online, one engagement event at a time, how
likely a viewer is to engage with a video.

Features are sparse and hashed into `learner_feature_buckets` slots (bounded memory however many viewers and
videos): the video, its author, hashtags and sound, on their own (what everyone likes), per viewer (what this viewer
likes) and per region. Labels come from what viewers do; negative signals weigh much more than positive ones, so
one "not interested" outweighs several idle completions.

river learns (one event at a time); scoring a page's few hundred candidates reads a dense numpy copy of the
weights, kept in step with river's after each event, and scores them all in one vectorised step instead of one
`predict_proba_one` call each.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from river import linear_model, optim

from feeds.catalogue import CatalogueVideo

LEARNING_RATE = 0.2
L2 = 0.0  # must stay 0: with L2 every weight would change on each event, not only the event's features
LOGIT_CLAMP = 30.0  # river's sigmoid answers exactly 0 or 1 beyond this logit; _sigmoid does the same
# (label, weight) of each kind of event; watch is labelled by how much of the video was watched.
LABELS: dict[str, tuple[bool, float]] = {
    "like": (True, 2.0), "share": (True, 3.0), "comment": (True, 1.5), "follow": (True, 3.0),
    "unlike": (False, 2.0), "not_interested": (False, 8.0), "report": (False, 12.0),
}
WATCH_FINISHED_RATIO = 0.8  # watched this much or more: a positive example
WATCH_SKIPPED_RATIO = 0.25  # less than this: a negative one
WATCH_WEIGHT = 1.0
VIDEO_FEATURES_CACHED_MAX = 200_000  # videos whose hashed features are kept; all forgotten at once past this
VIEWERS_CACHED_MAX = 2_000  # viewers whose per-viewer feature slots are kept; all forgotten at once past this


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
        self._video_arrays: dict[int, _VideoArrays] = {}  # the same, and the per-viewer ones, as arrays
        self._key_ids: dict[tuple[bool, str], int] = {}  # per-viewer feature names, interned (bounded by the videos)
        self._key_names: list[tuple[bool, str]] = []
        self._viewer_slots: dict[tuple[int, str], dict[int, int]] = {}  # (viewer, region) -> key id -> slot
        self._weights = np.zeros(buckets)  # river's weights, dense, for scoring many videos at once

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
                self._video_arrays.clear()
                self._key_ids.clear()
                self._key_names.clear()
                self._viewer_slots.clear()
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
        features = self.features(example.user_id, example.region, video)
        self.model.learn_one(features, engaged, w=weight)
        learned = self.model._weights  # SGD without L2 changes only the weights of the event's features
        for slot in features:
            self._weights[slot] = learned[slot]
        self.examples += 1
        return True

    def scores(self, user_id: int, region: str, videos: Iterable[CatalogueVideo]) -> dict[int, float]:
        """The probability that the viewer engages with each video (what river's `predict_proba_one` gives for
        each, computed for all of them at once)."""
        videos = list(videos)
        if not videos:
            return {}
        arrays = [self._video_array(video) for video in videos]
        rows = np.repeat(np.arange(len(videos)), [len(a.slots) for a in arrays])
        key_rows = np.repeat(np.arange(len(videos)), [len(a.keys) for a in arrays])
        keys = np.concatenate([a.keys for a in arrays])
        unique, where = np.unique(keys, return_inverse=True)
        known = self._viewer_slots.get((user_id, region))
        if known is None:
            if len(self._viewer_slots) >= VIEWERS_CACHED_MAX:
                self._viewer_slots.clear()
            known = self._viewer_slots[(user_id, region)] = {}
        user_prefix, region_prefix = f"u:{user_id}:", f"r:{region}:t:"
        names, slot = self._key_names, self.slot
        found = []
        for key in unique.tolist():
            key_slot = known.get(key)
            if key_slot is None:
                regional, suffix = names[key]
                key_slot = known[key] = slot((region_prefix if regional else user_prefix) + suffix)
            found.append(key_slot)
        key_slots = np.array(found, dtype=np.intp)
        # One bincount adds each video's terms in river's order (its own features, then the per-viewer ones), so
        # the sums are river's to the last bit.
        slots = np.concatenate([*(a.slots for a in arrays), key_slots[where]])
        values = np.concatenate([*(a.values for a in arrays), *(a.key_values for a in arrays)])
        logits = np.bincount(np.concatenate((rows, key_rows)), weights=self._weights[slots] * values,
                             minlength=len(videos)) + self.model.intercept
        return {video.id: _sigmoid(logit) for video, logit in zip(videos, logits.tolist(), strict=True)}

    def _video_array(self, video: CatalogueVideo) -> _VideoArrays:
        """The video's own features, and the names of its per-viewer ones (interned), as arrays."""
        arrays = self._video_arrays.get(video.id)
        if arrays is None:
            features = self._video_features(video)
            suffixes = [(False, f"a:{video.author_id}")]
            key_values = [1.0]
            if video.sound_id is not None:
                suffixes.append((False, f"s:{video.sound_id}"))
                key_values.append(1.0)
            if video.challenge_id is not None:
                suffixes.append((False, f"c:{video.challenge_id}"))
                key_values.append(1.0)
            weight = tag_weight(video)
            for tag in video.hashtags:
                suffixes += ((False, f"t:{tag}"), (True, tag))
                key_values += (weight, weight)
            arrays = _VideoArrays(np.fromiter(features, dtype=np.intp, count=len(features)),
                                  np.fromiter(features.values(), dtype=np.float64, count=len(features)),
                                  np.array([self._key(suffix) for suffix in suffixes], dtype=np.intp),
                                  np.array(key_values))
            self._video_arrays[video.id] = arrays
        return arrays

    def _key(self, name: tuple[bool, str]) -> int:
        key = self._key_ids.get(name)
        if key is None:
            key = self._key_ids[name] = len(self._key_names)
            self._key_names.append(name)
        return key


@dataclass(frozen=True)
class _VideoArrays:
    slots: np.ndarray  # the video's own feature slots
    values: np.ndarray
    keys: np.ndarray  # its per-viewer features: ids of (per region?, name suffix) in OnlineRanker._key_names
    key_values: np.ndarray


def _sigmoid(logit: float) -> float:
    """river's sigmoid (math.exp: numpy's can differ in the last bit, and so tip ties between videos)."""
    if logit < -LOGIT_CLAMP:
        return 0.0
    if logit > LOGIT_CLAMP:
        return 1.0
    return 1 / (1 + math.exp(-logit))


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
