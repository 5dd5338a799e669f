"""Feeds: short videos (uploaded, or a live stream's recording), engagement from the feed page, the Following feed
(fan-out on write into Redis timelines, on read for large followings) and the For You feed (candidate sources, an
online ranker, filters), plus the offline evaluation (feeds/evaluation).

Public: `Feeds` (the context of one node: its hooks `add_upload_check`, `add_ready_listener`,
`add_candidate_source`, `labels.add` (how other contexts label video cards), and `public_videos`), `FEEDS` (its app
key), `add_routes`, `ENGAGEMENT_WEIGHTS_SQL` (how much each engagement event says about a video, as SQL over
`engagements e`), `Source` and `CatalogueVideo` (what a candidate source is given and returns ids of).
"""

from feeds.catalogue import Catalogue, CatalogueVideo
from feeds.routes import FEEDS, add_routes
from feeds.service import Feeds
from feeds.sources import Context, Source
from feeds.trending import WEIGHTS_SQL as ENGAGEMENT_WEIGHTS_SQL

__all__ = ["ENGAGEMENT_WEIGHTS_SQL", "FEEDS", "Catalogue", "CatalogueVideo", "Context", "Feeds", "Source",
           "add_routes"]
