"""Feeds: short videos (uploaded, or a live stream's recording), engagement from the feed page, the Following feed
(fan-out on write into Redis timelines, on read for large followings) and the For You feed (candidate sources, an
online ranker, filters), plus the offline evaluation (feeds/evaluation).

Public: `Feeds` (the context of one node; `Feeds.labels.add` is the hook other contexts label video cards
through), `FEEDS` (its app key), `add_routes`.
"""

from feeds.routes import FEEDS, add_routes
from feeds.service import Feeds

__all__ = ["FEEDS", "Feeds", "add_routes"]
