"""Campaigns, their ad groups and creatives in PostgreSQL: create (reserving the budget), read, list, pause, end."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from ads import billing
from ads.auction import BidKind
from ads.pacing import Pacing
from ads.targeting import Targeting
from livecore.http import Problem


@dataclass(frozen=True)
class NewCreative:
    video_id: int
    headline: str
    landing_url: str | None


@dataclass(frozen=True)
class NewAdGroup:
    name: str
    bid_kind: BidKind
    bid_cents: int
    targeting: Targeting
    frequency_per_day_max: int
    creatives: list[NewCreative] = field(default_factory=list)


@dataclass(frozen=True)
class NewCampaign:
    name: str
    budget_daily_cents: int
    budget_lifetime_cents: int
    starts_ms: int
    ends_ms: int
    pacing: Pacing
    groups: list[NewAdGroup]


async def create_campaign(pool: asyncpg.Pool, accounts: billing.AdAccounts, advertiser_id: int, new: NewCampaign,
                          now_ms: int) -> int:
    """A new active campaign with its lifetime budget held from the advertiser's balance (402 when short)."""
    await _check_creatives(pool, advertiser_id, [c.video_id for g in new.groups for c in g.creatives])
    await billing.prepare(accounts, advertiser_id)
    async with pool.acquire() as conn, conn.transaction():
        campaign_id = await conn.fetchval(
            "INSERT INTO ad_campaigns (advertiser_id, name, budget_daily_cents, budget_lifetime_cents, starts_ms,"
            " ends_ms, pacing, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            advertiser_id, new.name, new.budget_daily_cents, new.budget_lifetime_cents, new.starts_ms, new.ends_ms,
            new.pacing, now_ms)
        for group in new.groups:
            t = group.targeting
            group_id = await conn.fetchval(
                "INSERT INTO ad_groups (campaign_id, name, bid_kind, bid_cents, age_bands, regions, languages,"
                " interests, frequency_per_day_max) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                campaign_id, group.name, group.bid_kind, group.bid_cents, list(t.age_bands), list(t.regions),
                list(t.languages), list(t.interests), group.frequency_per_day_max)
            await conn.executemany(
                "INSERT INTO ad_creatives (ad_group_id, video_id, headline, landing_url) VALUES ($1, $2, $3, $4)",
                [(group_id, c.video_id, c.headline, c.landing_url) for c in group.creatives])
        await billing.reserve(conn, accounts, advertiser_id, campaign_id, new.budget_lifetime_cents, now_ms)
    return campaign_id


async def _check_creatives(pool: asyncpg.Pool, advertiser_id: int, video_ids: list[int]) -> None:
    rows = await pool.fetch("SELECT id, author_id, state FROM videos WHERE id = ANY($1)", video_ids)
    found = {r["id"]: r for r in rows}
    for video_id in video_ids:
        row = found.get(video_id)
        if row is None or row["author_id"] != advertiser_id:
            raise Problem(400, "invalid-creative", f"video {video_id} is not a video you uploaded",
                          field="ad_groups.creatives.video_id")
        if row["state"] == "failed":
            raise Problem(400, "invalid-creative", f"video {video_id} failed processing; upload it again",
                          field="ad_groups.creatives.video_id")


_CAMPAIGN_COLUMNS = ("id, advertiser_id, name, state, budget_daily_cents, budget_lifetime_cents, starts_ms, ends_ms,"
                     " pacing, charged_millicents, billed_cents, created_ms, ended_ms, settled_ms, returned_cents")


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat()


def _campaign_view(row: asyncpg.Record, groups: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": row["id"], "advertiser_id": row["advertiser_id"], "name": row["name"], "state": row["state"],
            "budget_daily_cents": row["budget_daily_cents"], "budget_lifetime_cents": row["budget_lifetime_cents"],
            "starts_at": _iso(row["starts_ms"]), "ends_at": _iso(row["ends_ms"]), "pacing": row["pacing"],
            "spend_cents": row["charged_millicents"] // 1000, "billed_cents": row["billed_cents"],
            "created_at": _iso(row["created_ms"]),
            "ended_at": _iso(row["ended_ms"]) if row["ended_ms"] is not None else None,
            "settled_at": _iso(row["settled_ms"]) if row["settled_ms"] is not None else None,
            "returned_cents": row["returned_cents"], "ad_groups": groups}


async def get_campaign(pool: asyncpg.Pool, campaign_id: int, advertiser_id: int) -> dict[str, Any]:
    """The advertiser's campaign with its groups and creatives; 404 for anyone else's."""
    row = await pool.fetchrow(f"SELECT {_CAMPAIGN_COLUMNS} FROM ad_campaigns WHERE id = $1", campaign_id)
    if row is None or row["advertiser_id"] != advertiser_id:
        raise Problem(404, "campaign-not-found", f"you have no campaign {campaign_id}")
    return _campaign_view(row, (await _groups(pool, [campaign_id])).get(campaign_id, []))


async def list_campaigns(pool: asyncpg.Pool, advertiser_id: int, limit: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(f"SELECT {_CAMPAIGN_COLUMNS} FROM ad_campaigns WHERE advertiser_id = $1"
                            " ORDER BY id DESC LIMIT $2", advertiser_id, limit)
    groups = await _groups(pool, [r["id"] for r in rows])
    return [_campaign_view(r, groups.get(r["id"], [])) for r in rows]


async def _groups(pool: asyncpg.Pool, campaign_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    groups = await pool.fetch(
        "SELECT id, campaign_id, name, bid_kind, bid_cents, age_bands, regions, languages, interests,"
        " frequency_per_day_max FROM ad_groups WHERE campaign_id = ANY($1) ORDER BY id", campaign_ids)
    creatives = await pool.fetch("SELECT id, ad_group_id, video_id, headline, landing_url FROM ad_creatives"
                                 " WHERE ad_group_id = ANY($1) ORDER BY id", [g["id"] for g in groups])
    by_group: dict[int, list[dict[str, Any]]] = {}
    for c in creatives:
        by_group.setdefault(c["ad_group_id"], []).append(
            {"id": c["id"], "video_id": c["video_id"], "headline": c["headline"], "landing_url": c["landing_url"]})
    found: dict[int, list[dict[str, Any]]] = {}
    for g in groups:
        found.setdefault(g["campaign_id"], []).append({
            "id": g["id"], "name": g["name"], "bid": {"kind": g["bid_kind"], "cents": g["bid_cents"]},
            "targeting": {"age_bands": list(g["age_bands"]), "regions": list(g["regions"]),
                          "languages": list(g["languages"]), "interests": list(g["interests"])},
            "frequency_per_day_max": g["frequency_per_day_max"], "creatives": by_group.get(g["id"], [])})
    return found


async def set_state(pool: asyncpg.Pool, campaign_id: int, advertiser_id: int, state: str) -> dict[str, Any]:
    """Pause or resume the advertiser's campaign (idempotent); 409 once it has ended."""
    updated = await pool.fetchval("UPDATE ad_campaigns SET state = $3 WHERE id = $1 AND advertiser_id = $2"
                                  " AND state <> 'ended' RETURNING id", campaign_id, advertiser_id, state)
    if updated is None:
        view = await get_campaign(pool, campaign_id, advertiser_id)  # 404 when it is not theirs
        raise Problem(409, "campaign-ended", f"campaign {campaign_id} has ended; it cannot be {state} again",
                      state=view["state"])
    return await get_campaign(pool, campaign_id, advertiser_id)


async def end_campaign(pool: asyncpg.Pool, campaign_id: int, advertiser_id: int, now_ms: int) -> None:
    """End the advertiser's campaign for good (idempotent): it is in no auction and charges nothing from now on;
    its unspent budget is given back by `billing.settle`."""
    updated = await pool.fetchval("UPDATE ad_campaigns SET state = 'ended', ended_ms = coalesce(ended_ms, $3)"
                                  " WHERE id = $1 AND advertiser_id = $2 RETURNING id", campaign_id, advertiser_id,
                                  now_ms)
    if updated is None:
        raise Problem(404, "campaign-not-found", f"you have no campaign {campaign_id}")
