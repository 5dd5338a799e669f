"""Measured ad events from the feed page: impressions, viewable impressions, quartiles and clicks.

Each (user, event id) counts once, and so does each (impression, kind): a retried batch or a page that sends an
impression twice under two ids changes nothing. The billable event of an impression (the impression itself for a
CPM bid, its click for CPC) carries the price its auction set, capped so a campaign is never charged beyond its
lifetime budget; the charge is posted to the ledger later in a batch (billing.py). One database transaction for
many users' batches (recorder.py gathers them): what is counted is charged, or neither.
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


@dataclass(frozen=True)
class Batch:
    """One request's events, all of one user's."""

    user_id: int
    events: list[Event]


async def record(pool: asyncpg.Pool, user_id: int, events: list[Event]) -> Recorded:
    """Store a user's batch; what was new, what repeated, and what it charged."""
    return (await record_many(pool, [Batch(user_id, events)]))[0]


async def record_many(pool: asyncpg.Pool, batches: list[Batch]) -> list[Recorded]:
    """Store many users' batches in one transaction of at most six statements, whatever their number; for each
    batch, what was new, what repeated and what it charged. Rows are written in one order (campaign, user, event id;
    campaigns by id; roll-ups and counts by key), so two such transactions never wait for each other in a cycle."""
    rows = sorted(((index, event) for index, batch in enumerate(batches) for event in batch.events),
                  key=lambda r: (r[1].impression.campaign_id, batches[r[0]].user_id, r[1].id))
    accepted = [0] * len(batches)
    charges: list[list[tuple[int, int, int]]] = [[] for _ in batches]
    async with pool.acquire() as conn, conn.transaction():
        inserted = {(r["user_id"], r["event_id"]) for r in await conn.fetch(
            "INSERT INTO ad_events (user_id, event_id, impression_id, kind, campaign_id, ad_group_id, at_ms)"
            " SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[],"
            " $7::bigint[]) ON CONFLICT DO NOTHING RETURNING user_id, event_id",
            *_columns([(batches[i].user_id, e.id, e.impression.id, e.kind, e.impression.campaign_id,
                        e.impression.ad_group_id, e.at_ms) for i, e in rows], 7))}
        new = []
        for index, event in rows:
            key = (batches[index].user_id, event.id)
            if key in inserted:  # a retry in the same transaction as its original: the first of them is the new one
                inserted.discard(key)
                accepted[index] += 1
                new.append((index, event))
        charged = await _charge(conn, [(i, e) for i, e in new if billable(e) and e.impression.price_millicents > 0],
                                batches)
        stats: dict[tuple[int, int, int], dict[str, int]] = defaultdict(lambda: dict.fromkeys(_STAT_COLUMNS, 0))
        for index, event in new:
            imp = event.impression
            row = stats[(imp.campaign_id, imp.ad_group_id, event.at_ms - event.at_ms % HOUR_MS)]
            row[_STAT_COLUMN[event.kind]] += 1
            millicents = charged.get((batches[index].user_id, event.id), 0)
            if millicents:
                row["spend_millicents"] += millicents
                charges[index].append((imp.campaign_id, event.at_ms, millicents))
        await _roll_up(conn, stats)
        await _count(conn, stats)
    return [Recorded(accepted[i], len(b.events) - accepted[i], charges[i]) for i, b in enumerate(batches)]


_STAT_COLUMNS = (*_STAT_COLUMN.values(), "spend_millicents")


def _columns(rows: list[tuple], width: int) -> list[list]:  # type: ignore[type-arg]
    """Rows as `width` column lists, for unnest()."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


async def _roll_up(conn: asyncpg.Connection, stats: dict[tuple[int, int, int], dict[str, int]]) -> None:
    """Add the counts to the hourly roll-ups, in key order."""
    if not stats:
        return
    keys = sorted(stats)
    names = ", ".join(_STAT_COLUMNS)
    arrays = ", ".join(f"${i + 4}::bigint[]" for i in range(len(_STAT_COLUMNS)))
    await conn.execute(
        f"INSERT INTO ad_stats_hourly (campaign_id, ad_group_id, hour_ms, {names})"
        f" SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], {arrays})"
        " ON CONFLICT (campaign_id, ad_group_id, hour_ms) DO UPDATE SET "
        + ", ".join(f"{c} = ad_stats_hourly.{c} + excluded.{c}" for c in _STAT_COLUMNS),
        *_columns([(*key, *(stats[key][c] for c in _STAT_COLUMNS)) for key in keys], 3 + len(_STAT_COLUMNS)))


async def _count(conn: asyncpg.Connection, stats: dict[tuple[int, int, int], dict[str, int]]) -> None:
    """Move each ad group's counts of all time (the inventory's predicted click rates read them), in group order,
    after every roll-up row: the locks are always taken in that order, so two batches never wait for each other."""
    counts: dict[tuple[int, int], list[int]] = {}
    for (campaign_id, group_id, _), row in stats.items():
        if row["impressions"] or row["clicks"]:
            figures = counts.setdefault((group_id, campaign_id), [0, 0])
            figures[0] += row["impressions"]
            figures[1] += row["clicks"]
    if counts:
        await conn.execute(
            "INSERT INTO ad_group_counts (ad_group_id, campaign_id, impressions, clicks)"
            " SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[])"
            " ON CONFLICT (ad_group_id) DO UPDATE SET impressions = ad_group_counts.impressions + excluded.impressions,"
            " clicks = ad_group_counts.clicks + excluded.clicks",
            *_columns([(g, c, i, k) for (g, c), (i, k) in sorted(counts.items())], 4))


async def _charge(conn: asyncpg.Connection, billed: list[tuple[int, Event]],
                  batches: list[Batch]) -> dict[tuple[int, str], int]:
    """Charge each campaign its new billable events' prices, never beyond its lifetime budget and nothing once it
    has ended (its unspent budget is given back then): what each event was charged, by (user, event id), in the
    events' order (the event that reaches the budget gets what was left of it).

    The row lock is NO KEY UPDATE: this transaction's event rows already hold a KEY SHARE lock on the campaign (their
    foreign key), and so may a concurrent batch's; FOR UPDATE conflicts with KEY SHARE, so two batches for one
    campaign each waited for the other (a deadlock), while NO KEY UPDATE only waits for the other's charge."""
    if not billed:
        return {}
    wanted: dict[int, int] = defaultdict(int)
    for _, event in billed:
        wanted[event.impression.campaign_id] += event.impression.price_millicents
    rows = await conn.fetch(
        "WITH want AS (SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS w (id, millicents)),"
        " old AS (SELECT c.id, c.charged_millicents, c.budget_lifetime_cents FROM ad_campaigns c"
        " WHERE c.id = ANY($1) AND c.state <> 'ended' ORDER BY c.id FOR NO KEY UPDATE)"
        " UPDATE ad_campaigns c SET charged_millicents = least(old.budget_lifetime_cents * 1000,"
        " old.charged_millicents + want.millicents) FROM old JOIN want ON want.id = old.id WHERE c.id = old.id"
        " RETURNING c.id, c.charged_millicents - old.charged_millicents AS charged",
        *_columns(sorted(wanted.items()), 2))
    left = {r["id"]: r["charged"] for r in rows}
    charged: dict[tuple[int, str], int] = {}
    for index, event in billed:
        imp = event.impression
        amount = min(imp.price_millicents, left.get(imp.campaign_id, 0))
        if amount:
            left[imp.campaign_id] -= amount
            charged[(batches[index].user_id, event.id)] = amount
    if charged:
        await conn.execute(
            "UPDATE ad_events e SET millicents = v.millicents"
            " FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS v (user_id, event_id, millicents)"
            " WHERE e.user_id = v.user_id AND e.event_id = v.event_id",
            *_columns([(user, event_id, m) for (user, event_id), m in charged.items()], 3))
    return charged
