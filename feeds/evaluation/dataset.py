"""What an offline evaluation runs on: videos, viewers and their interactions in time order."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Interaction:
    user_id: int
    video_id: int
    at_ms: int
    watch_ratio: float
    liked: bool = False


@dataclass(frozen=True)
class VideoInfo:
    id: int
    author_id: int
    hashtags: tuple[str, ...]
    created_ms: int


@dataclass
class Dataset:
    videos: dict[int, VideoInfo]
    regions: dict[int, str]  # user id -> region
    interactions: list[Interaction]
    description: str
    interests: dict[int, tuple[str, ...]] = field(default_factory=dict)  # onboarding interests, when known
