"""Real interaction logs as CSV, in the layout of the public short-video datasets (KuaiRec, KuaiRand):
`user_id, video_id, timestamp, watch_ratio` (other columns are ignored; timestamp in seconds or milliseconds)."""

from __future__ import annotations

import csv
from pathlib import Path

from feeds.evaluation.dataset import Dataset, Interaction, VideoInfo

REQUIRED = ("user_id", "video_id", "timestamp", "watch_ratio")
SECONDS_BEFORE = 10**11  # a timestamp below this is in seconds (year 5138 in seconds; 1973 in milliseconds)
REGION = "all"  # such logs carry no region: everyone is in one


class InteractionLogError(ValueError):
    """The CSV cannot be read as an interaction log; the message says where and why."""


def load_csv(path: Path, rows_max: int) -> Dataset:
    interactions: list[Interaction] = []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise InteractionLogError(f"{path}: missing column(s) {', '.join(missing)}; need {', '.join(REQUIRED)}")
        for line, row in enumerate(reader, start=2):
            if len(interactions) >= rows_max:
                break
            try:
                stamp = float(row["timestamp"])
                interactions.append(Interaction(int(float(row["user_id"])), int(float(row["video_id"])),
                                                int(stamp * 1000 if stamp < SECONDS_BEFORE else stamp),
                                                float(row["watch_ratio"])))
            except (TypeError, ValueError) as exc:
                raise InteractionLogError(f"{path}:{line}: {exc}") from exc
    interactions.sort(key=lambda i: i.at_ms)
    first_seen: dict[int, int] = {}
    for interaction in interactions:
        first_seen.setdefault(interaction.video_id, interaction.at_ms)
    # No authors or hashtags in such logs: each video is its own author, so diversity rules do not bind.
    videos = {v: VideoInfo(v, v, (), at) for v, at in first_seen.items()}
    regions = {i.user_id: REGION for i in interactions}
    return Dataset(videos, regions, interactions, f"{path.name}: {len(regions)} viewers, {len(videos)} videos, "
                   f"{len(interactions)} interactions")
