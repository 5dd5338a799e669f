"""A seeded simulator of viewers with hidden tastes, for offline evaluation.

The generative model (every draw from one `random.Random(seed)`; numpy is not needed):

- Categories: `categories` hashtags `c0..c{n-1}`. Regions: `regions` names; each region has its own popularity
  over categories, a Dirichlet(0.5) draw, so what trends differs between regions.
- Authors: each has a home category; each of their videos is in it with probability 0.8, else in a uniformly drawn
  category. A video has a quality q ~ Beta(2, 3) and a creation time uniform over the first 80 % of the horizon.
- Viewers: a region drawn uniformly and a hidden taste over categories: 0.7 x a personal Dirichlet(0.3) draw (a few
  strong likes) + 0.3 x their region's popularity. The viewer names their two strongest categories as onboarding
  interests with probability `interests_share`.
- Exposures (the logging policy of the platform that produced the log): each viewer sees `exposures` videos at
  times uniform over the horizon, each of a category drawn half from the viewer's taste and half uniformly, then a
  video of that category drawn in proportion to its quality, among those already made.
- Response: affinity a = taste[c] x categories (1 on average); the viewer finishes the video (watch_ratio drawn in
  [0.8, 1.2], loops included) with probability sigmoid(2 ln a + 3 (q - 0.4)), else leaves after a share drawn in
  [0, 0.5); a finished video is liked with probability 0.3.
"""

from __future__ import annotations

import math
import random

from feeds.evaluation.dataset import Dataset, Interaction, VideoInfo

HORIZON_MS = 30 * 24 * 3600 * 1000
HOME_CATEGORY_SHARE = 0.8
PERSONAL_TASTE_SHARE = 0.7
TASTE_CONCENTRATION = 0.3
REGION_CONCENTRATION = 0.5
LIKE_SHARE = 0.3


def simulate(*, seed: int = 7, users: int = 1000, videos: int = 2000, authors: int = 200, categories: int = 20,
             regions: int = 4, exposures: int = 60, interests_share: float = 0.5) -> Dataset:
    rng = random.Random(seed)
    names = [f"c{i}" for i in range(categories)]
    region_names = [f"R{i}" for i in range(regions)]
    region_taste = {r: _dirichlet(rng, categories, REGION_CONCENTRATION) for r in region_names}
    homes = [rng.randrange(categories) for _ in range(authors)]
    catalogue: dict[int, VideoInfo] = {}
    quality: dict[int, float] = {}
    by_category: list[list[int]] = [[] for _ in range(categories)]
    for video_id in range(1, videos + 1):
        author = rng.randrange(authors)
        category = homes[author] if rng.random() < HOME_CATEGORY_SHARE else rng.randrange(categories)
        created = int(rng.random() * 0.8 * HORIZON_MS)
        catalogue[video_id] = VideoInfo(video_id, author + 1, (names[category],), created)
        quality[video_id] = rng.betavariate(2, 3)
        by_category[category].append(video_id)
    user_regions: dict[int, str] = {}
    interests: dict[int, tuple[str, ...]] = {}
    log: list[Interaction] = []
    for user_id in range(1, users + 1):
        region = rng.choice(region_names)
        personal = _dirichlet(rng, categories, TASTE_CONCENTRATION)
        taste = [PERSONAL_TASTE_SHARE * p + (1 - PERSONAL_TASTE_SHARE) * r
                 for p, r in zip(personal, region_taste[region], strict=True)]
        user_regions[user_id] = region
        if rng.random() < interests_share:
            interests[user_id] = tuple(names[c] for c in sorted(range(categories), key=lambda c: -taste[c])[:2])
        for _ in range(exposures):
            at = int(rng.random() * HORIZON_MS)
            category = _draw(rng, taste) if rng.random() < 0.5 else rng.randrange(categories)
            made = [v for v in by_category[category] if catalogue[v].created_ms <= at]
            if not made:
                continue
            video_id = rng.choices(made, weights=[quality[v] for v in made])[0]
            affinity = taste[category] * categories
            finish = 1 / (1 + math.exp(-(2 * math.log(affinity + 1e-9) + 3 * (quality[video_id] - 0.4))))
            if rng.random() < finish:
                ratio, liked = rng.uniform(0.8, 1.2), rng.random() < LIKE_SHARE
            else:
                ratio, liked = rng.uniform(0, 0.5), False
            log.append(Interaction(user_id, video_id, at, ratio, liked))
    log.sort(key=lambda i: i.at_ms)
    return Dataset(catalogue, user_regions, log, f"simulated (seed {seed}): {users} viewers, {videos} videos, "
                   f"{authors} authors, {categories} categories, {regions} regions, {len(log)} interactions",
                   interests)


def _dirichlet(rng: random.Random, size: int, concentration: float) -> list[float]:
    draws = [rng.gammavariate(concentration, 1) for _ in range(size)]
    total = sum(draws) or 1.0
    return [d / total for d in draws]


def _draw(rng: random.Random, weights: list[float]) -> int:
    return rng.choices(range(len(weights)), weights=weights)[0]
