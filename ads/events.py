"""Measured ad events from the feed page: impressions, viewable impressions, quartiles and clicks.

Each (user, event id) counts once, and so does each (impression, kind): a retried batch or a page that sends an
impression twice under two ids changes nothing. The billable event of an impression (the impression itself for a
CPM bid, its click for CPC) carries the price its auction set, capped so a campaign is never charged beyond its
lifetime budget; the charge is posted to the ledger later in a batch (billing.py). One database transaction per
batch: what is counted is charged, or neither.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

import asyncpg

from ads.impressions import Impression
from ads.pacing import HOUR_MS

Kind = Literal["impression", "viewable", "q25", "q50", "q75", "complete", "click"]
KINDS: tuple[Kind, ...] = ("impression", "viewable", "q25", "q50", "q75", "complete", "click")
_STAT_COLUMN = {"impression": "impressions", "viewable": "viewable", "q25": "q25", "q50": "q50", "q75": "q75",
                "complete": "complete", "click": "clicks"}


@dataclass(frozen=True)
class Event:
    id: str
    impression: Impression
    kind: Kind
    at_ms: int


@dataclass(frozen=True)
class Recorded:
    accepted: int
    duplicates: int
    charges: list[tuple[int, int, int]]  # (campaign id, at ms, millicents) charged now


def billable(event: Event) -> bool:
    return (event.kind, event.impression.bid_kind) in (("impression", "cpm"), ("click", "cpc"))


async def record(pool: asyncpg.Pool, user_id: int, events: list[Event]) -> Recorded:
    """Store a user's batch; what was new, what repeated, and what it charged."""
    stats: dict[tuple[int, int, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    charges: list[tuple[int, int, int]] = []
    accepted = 0
    async with pool.acquire() as conn, conn.transaction():
        for event in sorted(events, key=lambda e: (e.impression.campaign_id, e.id)):  # lock campaigns in order
            imp = event.impression
            new = await conn.fetchval(
                "INSERT INTO ad_events (user_id, event_id, impression_id, kind, campaign_id, ad_group_id, at_ms)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING true",
                user_id, event.id, imp.id, event.kind, imp.campaign_id, imp.ad_group_id, event.at_ms)
            if not new:
                continue
            accepted += 1
            row = stats[(imp.campaign_id, imp.ad_group_id, event.at_ms - event.at_ms % HOUR_MS)]
            row[_STAT_COLUMN[event.kind]] += 1
            if billable(event) and imp.price_millicents > 0:
                charged = await _charge(conn, user_id, event, imp)
                if charged:
                    row["spend_millicents"] += charged
                    charges.append((imp.campaign_id, event.at_ms, charged))
        for (campaign_id, group_id, hour_ms), row in sorted(stats.items()):
            columns = list(row)
            await conn.execute(
                f"INSERT INTO ad_stats_hourly (campaign_id, ad_group_id, hour_ms, {', '.join(columns)})"
                f" VALUES ($1, $2, $3, {', '.join(f'${i + 4}' for i in range(len(columns)))})"
                " ON CONFLICT (campaign_id, ad_group_id, hour_ms) DO UPDATE SET "
                + ", ".join(f"{c} = ad_stats_hourly.{c} + excluded.{c}" for c in columns),
                campaign_id, group_id, hour_ms, *row.values())
        await _count(conn, stats)
    return Recorded(accepted, len(events) - accepted, charges)


async def _count(conn: asyncpg.Connection, stats: dict[tuple[int, int, int], dict[str, int]]) -> None:
    """Move each ad group's counts of all time (the inventory's predicted click rates read them), in group order,
    after every roll-up row: the locks are always taken in that order, so two batches never wait for each other."""
    counts: dict[tuple[int, int], list[int]] = {}
    for (campaign_id, group_id, _), row in stats.items():
        if row.get("impressions") or row.get("clicks"):
            figures = counts.setdefault((group_id, campaign_id), [0, 0])
            figures[0] += row.get("impressions", 0)
            figures[1] += row.get("clicks", 0)
    if counts:
        await conn.executemany(
            "INSERT INTO ad_group_counts (ad_group_id, campaign_id, impressions, clicks) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (ad_group_id) DO UPDATE SET impressions = ad_group_counts.impressions + excluded.impressions,"
            " clicks = ad_group_counts.clicks + excluded.clicks",
            [(g, c, i, k) for (g, c), (i, k) in sorted(counts.items())])


async def _charge(conn: asyncpg.Connection, user_id: int, event: Event, imp: Impression) -> int:
    """Charge the campaign the impression's price, never beyond its lifetime budget and nothing once it has ended
    (its unspent budget is given back then); the millicents charged.

    The row lock is NO KEY UPDATE: this transaction's event rows already hold a KEY SHARE lock on the campaign (their
    foreign key), and so may a concurrent batch's; FOR UPDATE conflicts with KEY SHARE, so two batches for one
    campaign each waited for the other (a deadlock), while NO KEY UPDATE only waits for the other's charge."""
    charged = await conn.fetchval(
        "WITH old AS (SELECT charged_millicents, budget_lifetime_cents FROM ad_campaigns"
        " WHERE id = $1 AND state <> 'ended' FOR NO KEY UPDATE)"
        " UPDATE ad_campaigns c SET charged_millicents = least(old.budget_lifetime_cents * 1000,"
        " old.charged_millicents + $2) FROM old WHERE c.id = $1"
        " RETURNING c.charged_millicents - old.charged_millicents",
        imp.campaign_id, imp.price_millicents)
    if charged:
        await conn.execute("UPDATE ad_events SET millicents = $3 WHERE user_id = $1 AND event_id = $2",
                           user_id, event.id, charged)
    return charged or 0
