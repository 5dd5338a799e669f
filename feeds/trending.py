"""What trends in each region: the most engaging videos of the last `foryou_trending_hours` among each region's
viewers, by one SQL aggregate over the engagement in that window.

The aggregate reads every event of the window, and every node wants its result every `foryou_refresh_ms`. Each
period one node takes the turn (a Redis key set if absent, expiring with the period), runs the aggregate and shares
its result under another key; the others read that. So a cluster runs it once per period, not once per node (per
worker with `--workers`). A node that finds no shared result (none yet, or its node died) computes its own; without
Redis each node computes its own, as before.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import asyncpg
import orjson
import redis.asyncio as redis

TURN_KEY = "feeds:{trending}:turn"
LISTS_KEY = "feeds:{trending}:lists"
LISTS_KEPT_PERIODS = 5  # a shared result outlives its period a little: a late turn still finds one
PER_REGION_MAX = 500
# How much each event says about a video's appeal, for trending (the ranker learns its own weights).
WEIGHTS_SQL = ("CASE e.kind WHEN 'like' THEN 3 WHEN 'share' THEN 5 WHEN 'comment' THEN 2 WHEN 'follow' THEN 4"
               " WHEN 'watch' THEN least(coalesce(e.watch_ratio, 0), 2) WHEN 'seen' THEN 0.1"
               " WHEN 'not_interested' THEN -5 WHEN 'report' THEN -10 ELSE 0 END")

Scored = dict[str, list[tuple[int, float]]]  # region -> (video id, score), most engaging first


async def trending_scores(pool: asyncpg.Pool, now_ms: int, hours: int) -> Scored:
    """The aggregate: per region, up to PER_REGION_MAX (video, score) with a positive score, best first."""
    since = dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC) - dt.timedelta(hours=hours)
    rows = await pool.fetch(
        "SELECT region, video_id, score FROM (SELECT region, video_id, score, row_number() OVER"
        " (PARTITION BY region ORDER BY score DESC, video_id DESC) AS rank FROM"
        f" (SELECT a.region, e.video_id, sum({WEIGHTS_SQL})::float8 AS score FROM engagements e"
        "  JOIN accounts a ON a.id = e.user_id WHERE e.at >= $1 GROUP BY a.region, e.video_id) scored"
        " WHERE score > 0) ranked WHERE rank <= $2 ORDER BY region, rank", since, PER_REGION_MAX)
    scored: Scored = defaultdict(list)
    for row in rows:
        scored[row["region"]].append((row["video_id"], row["score"]))
    return dict(scored)


class SharedTrending:
    """The trending lists of the current period, computed by the node whose turn it is and shared with the rest."""

    def __init__(self, pool: asyncpg.Pool, client: redis.Redis, node_id: str, period_ms: int) -> None:
        self.pool = pool
        self.redis = client
        self.node_id = node_id
        self.period_ms = period_ms
        self.computed = 0  # aggregates this node ran

    async def compute(self, now_ms: int, hours: int) -> Scored:
        """Run the aggregate now and share its result."""
        self.computed += 1
        scored = await trending_scores(self.pool, now_ms, hours)
        try:
            await self.redis.set(LISTS_KEY, orjson.dumps(scored), px=self.period_ms * LISTS_KEPT_PERIODS)
        except redis.RedisError:
            pass  # the others compute their own
        return scored

    async def current(self, now_ms: int, hours: int) -> Scored:
        """This period's lists: computed here when it is this node's turn or nobody shared any, else shared."""
        try:
            if await self.redis.set(TURN_KEY, self.node_id, nx=True, px=self.period_ms):
                return await self.compute(now_ms, hours)
            shared = await self.redis.get(LISTS_KEY)
        except redis.RedisError:
            return await trending_scores(self.pool, now_ms, hours)
        if shared is None:
            return await self.compute(now_ms, hours)
        return {region: [(int(video_id), float(score)) for video_id, score in pairs]
                for region, pairs in orjson.loads(shared).items()}
