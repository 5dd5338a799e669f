"""Creator cards: computed from in-house data (followers and their birth dates, regions and interests; the
creator's recent ready videos) and stored, so a search reads precomputed rows only.

The figures are read-only aggregates over the accounts' follows and the feeds' videos tables: a card needs
every follower's age band and every recent video's counts at once, which no per-record public function gives.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from ads.marketplace.audience import age_band, overlapping_shares, partition_shares

DAY_MS = 86_400_000


@dataclass(frozen=True)
class CardRules:
    """The settings a card is computed with."""

    followers_min: int
    recent_videos_min: int
    recent_days: int
    recent_videos_max: int
    growth_days: int
    group_size_min: int


@dataclass(frozen=True)
class Card:
    creator_id: int
    eligible: bool
    followers: int
    recent_videos: int
    median_views: int
    engagement_rate: float
    followers_gained: int
    growth_rate: float
    age_shares: dict[str, float]
    region_shares: dict[str, float]
    interest_shares: dict[str, float]


async def compute_card(pool: asyncpg.Pool, creator_id: int, rules: CardRules, now_ms: int) -> Card:
    """The card of one creator as of `now_ms`."""
    now = dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC)
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        followers = await conn.fetch(
            "SELECT a.birth_date, a.region, a.interests, f.created_at FROM follows f"
            " JOIN accounts a ON a.id = f.follower_id WHERE f.followee_id = $1", creator_id)
        videos = await conn.fetch(
            "SELECT views, likes, shares FROM videos WHERE author_id = $1 AND state = 'ready' AND created_at >= $2"
            " ORDER BY id DESC LIMIT $3",
            creator_id, now - dt.timedelta(days=rules.recent_days), rules.recent_videos_max)
    total = len(followers)
    since = now - dt.timedelta(days=rules.growth_days)
    gained = sum(1 for f in followers if f["created_at"] >= since)
    ages: dict[str, int] = {}
    regions: dict[str, int] = {}
    interests: dict[str, int] = {}
    for f in followers:
        band = age_band(f["birth_date"], now.date())
        if band is not None:
            ages[band] = ages.get(band, 0) + 1
        regions[f["region"]] = regions.get(f["region"], 0) + 1
        for interest in set(f["interests"]):
            interests[interest] = interests.get(interest, 0) + 1
    views = sum(v["views"] for v in videos)
    k = rules.group_size_min
    return Card(
        creator_id=creator_id,
        eligible=total >= rules.followers_min and len(videos) >= rules.recent_videos_min,
        followers=total, recent_videos=len(videos),
        median_views=int(statistics.median(v["views"] for v in videos)) if videos else 0,
        engagement_rate=round(sum(v["likes"] + v["shares"] for v in videos) / views, 4) if views else 0.0,
        followers_gained=gained,
        growth_rate=round(gained / (total - gained), 4) if total > gained else float(gained > 0),
        age_shares=partition_shares(ages, total, k), region_shares=partition_shares(regions, total, k),
        interest_shares=overlapping_shares(interests, total, k),
    )


async def store_card(pool: asyncpg.Pool, card: Card, now_ms: int) -> None:
    """Keep a computed card (for a creator still listed), with its audience groups indexed for search."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE marketplace_creators SET eligible = $2, followers = $3, recent_videos = $4, median_views = $5,"
            " engagement_rate = $6, followers_gained = $7, growth_rate = $8, age_shares = $9::jsonb,"
            " region_shares = $10::jsonb, interest_shares = $11::jsonb, computed_ms = $12 WHERE creator_id = $1",
            card.creator_id, card.eligible, card.followers, card.recent_videos, card.median_views,
            card.engagement_rate, card.followers_gained, card.growth_rate, _json(card.age_shares),
            _json(card.region_shares), _json(card.interest_shares), now_ms)
        await index_audience(conn, [card.creator_id])


async def index_audience(conn: asyncpg.Connection | asyncpg.Pool, creator_ids: list[int]) -> None:
    """Make the audience rows of cards again from their stored shares ("other" is no group to ask for)."""
    await conn.execute("DELETE FROM marketplace_audience WHERE creator_id = ANY($1::bigint[])", creator_ids)
    await conn.execute(_INDEX_AUDIENCE, creator_ids)


_INDEX_AUDIENCE = """
INSERT INTO marketplace_audience (creator_id, dimension, grp, share)
SELECT m.creator_id, d.dimension, s.key, s.value::float8
FROM marketplace_creators m
CROSS JOIN LATERAL (VALUES ('age', m.age_shares), ('region', m.region_shares), ('interest', m.interest_shares))
    AS d (dimension, shares)
CROSS JOIN LATERAL jsonb_each_text(d.shares) AS s
WHERE m.creator_id = ANY($1::bigint[]) AND s.key <> 'other'
"""


CARD_COLUMNS = ("m.creator_id, m.eligible, m.listed, m.followers, m.recent_videos, m.median_views,"
                " m.engagement_rate, m.followers_gained, m.growth_rate, m.age_shares, m.region_shares,"
                " m.interest_shares, m.computed_ms, a.username, a.display_name")


def card_view(row: asyncpg.Record) -> dict[str, Any]:
    """A stored card as the API shows it."""
    return {
        "creator": {"id": row["creator_id"], "username": row["username"], "display_name": row["display_name"]},
        "listed": row["listed"] and row["eligible"],
        "followers": row["followers"],
        "recent_videos": row["recent_videos"],
        "median_views": row["median_views"],
        "engagement_rate": row["engagement_rate"],
        "growth": {"followers_gained": row["followers_gained"], "rate": row["growth_rate"]},
        "audience": {"age_bands": orjson.loads(row["age_shares"]), "regions": orjson.loads(row["region_shares"]),
                     "interests": orjson.loads(row["interest_shares"])},
        "computed_at_ms": row["computed_ms"],
    }


def _json(value: dict[str, float]) -> str:
    return orjson.dumps(value).decode()
