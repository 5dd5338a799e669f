"""Advertisers' money on the ledger (commerce/ledger.py), in USD cents.

- funds: the platform credits an advertiser's prepaid `ad_balance` for money received outside (an invoice paid,
  a wire); `ad_deposits` (platform, may be negative) mirrors what advertisers paid in.
- reserve: creating a campaign moves its lifetime budget from `ad_balance` into the advertiser's `ad_budget_held`,
  in the same transaction; a balance too small refuses the campaign (402), so spend is always covered.
- spend: charges (one per impression for CPM, per click for CPC, each impression id charged once, capped at the
  lifetime budget) are posted in batches per campaign: `ad_budget_held` -> `ad_revenue` (platform), whole cents,
  the remainder carried to the next batch.
- return: once a campaign has ended, `settle` posts its last charges and moves what it did not spend from
  `ad_budget_held` back to `ad_balance`, once.
Both advertiser accounts are wallets: the ledger refuses to take either below zero.
"""

from __future__ import annotations

import zlib

import asyncpg

from commerce import ledger
from commerce.ledger import USD, Leg

AD_BALANCE = "ad_balance"
AD_BUDGET_HELD = "ad_budget_held"
AD_DEPOSITS = "ad_deposits"
AD_REVENUE = "ad_revenue"


class AdAccounts:
    """Ledger account ids of the ads context, created on first use (outside any posting transaction) and cached."""

    def __init__(self, pool: asyncpg.Pool, shards: int) -> None:
        self._pool = pool
        self._shards = shards
        self._ids: dict[tuple[int | None, str, int], int] = {}

    async def advertiser(self, owner_id: int, kind: str) -> int:
        return await self._id(owner_id, kind, 0, wallet=True)

    async def platform(self, kind: str, spread_key: str) -> int:
        return await self._id(None, kind, zlib.crc32(spread_key.encode()) % self._shards, wallet=False)

    async def _id(self, owner_id: int | None, kind: str, shard: int, *, wallet: bool) -> int:
        key = (owner_id, kind, shard)
        found = self._ids.get(key)
        if found is None:
            await self._pool.execute(
                "INSERT INTO ledger_accounts (owner_id, kind, currency, shard, is_wallet) VALUES ($1, $2, $3, $4, $5)"
                " ON CONFLICT ON CONSTRAINT one_account_per_owner_kind DO NOTHING", owner_id, kind, USD, shard, wallet)
            found = await self._pool.fetchval(
                "SELECT id FROM ledger_accounts WHERE owner_id IS NOT DISTINCT FROM $1 AND kind = $2"
                " AND currency = $3 AND shard = $4", owner_id, kind, USD, shard)
            self._ids[key] = found
        return found


async def fund(pool: asyncpg.Pool, accounts: AdAccounts, advertiser_id: int, cents: int, reference: str,
               now_ms: int, actor_id: int) -> bool:
    """Credit an advertiser's balance once per `reference`; False when that reference was credited before."""
    balance = await accounts.advertiser(advertiser_id, AD_BALANCE)
    deposits = await accounts.platform(AD_DEPOSITS, reference)
    async with pool.acquire() as conn, conn.transaction():
        posted = await ledger.post(conn, "ads_funds", f"ads-funds:{reference}", now_ms,
                                   [Leg(deposits, USD, -cents), Leg(balance, USD, cents)], actor_id=actor_id,
                                   details={"advertiser_id": advertiser_id, "cents": cents, "reference": reference})
    return posted is not None


async def reserve(conn: asyncpg.Connection, accounts: AdAccounts, advertiser_id: int, campaign_id: int, cents: int,
                  now_ms: int) -> None:
    """Hold a new campaign's lifetime budget (inside the transaction that creates it); 402 when it is not there.
    Resolve the accounts (`prepare`) before the transaction opens."""
    balance = await accounts.advertiser(advertiser_id, AD_BALANCE)
    held = await accounts.advertiser(advertiser_id, AD_BUDGET_HELD)
    await ledger.post(conn, "ads_budget_reserved", f"ads-reserve:{campaign_id}", now_ms,
                      [Leg(balance, USD, -cents), Leg(held, USD, cents)], actor_id=advertiser_id,
                      details={"campaign_id": campaign_id, "cents": cents})


async def prepare(accounts: AdAccounts, advertiser_id: int) -> None:
    await accounts.advertiser(advertiser_id, AD_BALANCE)
    await accounts.advertiser(advertiser_id, AD_BUDGET_HELD)


async def post_spend(pool: asyncpg.Pool, accounts: AdAccounts, campaign_id: int, advertiser_id: int,
                     batch_max: int, now_ms: int) -> int:
    """Post one batch of a campaign's unposted charges to the ledger; the cents posted (0 when none were due).

    One database transaction marks the charges with the batch, moves the campaign's billed figures and posts the
    whole cents now due, so a charge is posted exactly once whatever fails."""
    held = await accounts.advertiser(advertiser_id, AD_BUDGET_HELD)
    revenue = await accounts.platform(AD_REVENUE, str(campaign_id))
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT 1 FROM ad_campaigns WHERE id = $1 FOR NO KEY UPDATE", campaign_id)
        return await _post_batch(conn, campaign_id, advertiser_id, held, revenue, batch_max, now_ms)


async def _post_batch(conn: asyncpg.Connection, campaign_id: int, advertiser_id: int, held: int, revenue: int,
                      batch_max: int, now_ms: int) -> int:
    """Post up to `batch_max` unposted charges (the campaign's row locked by the caller); the cents posted."""
    campaign = await conn.fetchrow(
        "SELECT billed_millicents, billed_cents, spend_batches FROM ad_campaigns WHERE id = $1", campaign_id)
    batch = campaign["spend_batches"] + 1
    taken = await conn.fetchval(
        "WITH picked AS (SELECT user_id, event_id FROM ad_events WHERE campaign_id = $1 AND millicents > 0"
        " AND batch IS NULL LIMIT $2 FOR UPDATE),"
        " marked AS (UPDATE ad_events e SET batch = $3 FROM picked p"
        " WHERE e.user_id = p.user_id AND e.event_id = p.event_id RETURNING e.millicents)"
        " SELECT coalesce(sum(millicents), 0)::bigint FROM marked", campaign_id, batch_max, batch)
    if not taken:
        return 0
    billed_millicents = campaign["billed_millicents"] + taken
    cents = billed_millicents // 1000 - campaign["billed_cents"]
    if cents:
        await ledger.post(conn, "ads_spend", f"ads-spend:{campaign_id}:{batch}", now_ms,
                          [Leg(held, USD, -cents), Leg(revenue, USD, cents)], actor_id=advertiser_id,
                          details={"campaign_id": campaign_id, "batch": batch, "cents": cents})
    await conn.execute(
        "UPDATE ad_campaigns SET billed_millicents = $2, billed_cents = billed_cents + $3, spend_batches = $4"
        " WHERE id = $1", campaign_id, billed_millicents, cents, batch)
    return cents


async def settle(pool: asyncpg.Pool, accounts: AdAccounts, campaign_id: int, advertiser_id: int, batch_max: int,
                 now_ms: int) -> int | None:
    """Close an ended campaign's books, once: post its last charges, end it (nothing is charged after), and give
    what it did not spend back to the advertiser's balance. The cents given back; None when it was settled before.

    One database transaction with the campaign's row locked, so a concurrent charge, spend posting or settlement
    waits for it and then finds the campaign ended and settled; the return's external id (`ads-return:<id>`)
    makes one ledger transaction at most whatever runs twice. A fraction of a cent charged and not yet billed is
    not billed (the advertiser's favour, under a cent per campaign)."""
    held = await accounts.advertiser(advertiser_id, AD_BUDGET_HELD)
    balance = await accounts.advertiser(advertiser_id, AD_BALANCE)
    revenue = await accounts.platform(AD_REVENUE, str(campaign_id))
    async with pool.acquire() as conn, conn.transaction():
        settled = await conn.fetchval("SELECT settled_ms FROM ad_campaigns WHERE id = $1 FOR NO KEY UPDATE",
                                      campaign_id)
        if settled is not None:
            return None
        while await conn.fetchval("SELECT true FROM ad_events WHERE campaign_id = $1 AND millicents > 0"
                                  " AND batch IS NULL LIMIT 1", campaign_id):
            await _post_batch(conn, campaign_id, advertiser_id, held, revenue, batch_max, now_ms)
        unspent = await conn.fetchval(
            "UPDATE ad_campaigns SET state = 'ended', ended_ms = coalesce(ended_ms, $2), settled_ms = $2,"
            " returned_cents = budget_lifetime_cents - billed_cents WHERE id = $1 RETURNING returned_cents",
            campaign_id, now_ms)
        if unspent:
            await ledger.post(conn, "ads_budget_returned", f"ads-return:{campaign_id}", now_ms,
                              [Leg(held, USD, -unspent), Leg(balance, USD, unspent)], actor_id=advertiser_id,
                              details={"campaign_id": campaign_id, "cents": unspent})
    return unspent


async def campaigns_to_settle(pool: asyncpg.Pool, now_ms: int, settle_after_ms: int,
                              limit: int) -> list[tuple[int, int]]:
    """(campaign id, advertiser id) of campaigns that ended and are not settled: ended by their advertiser, charged
    their whole lifetime budget, or whose schedule ended at least `settle_after_ms` ago (events of impressions
    served before the end are charged until then)."""
    rows = await pool.fetch(
        "SELECT id, advertiser_id FROM ad_campaigns WHERE settled_ms IS NULL AND (state = 'ended'"
        " OR charged_millicents >= budget_lifetime_cents * 1000 OR ends_ms <= $1) ORDER BY id LIMIT $2",
        now_ms - settle_after_ms, limit)
    return [(r["id"], r["advertiser_id"]) for r in rows]


async def campaigns_with_unposted_spend(pool: asyncpg.Pool, limit: int) -> list[tuple[int, int]]:
    """(campaign id, advertiser id) of campaigns with charges not yet on the ledger."""
    rows = await pool.fetch(
        "SELECT c.id, c.advertiser_id FROM ad_campaigns c WHERE EXISTS (SELECT 1 FROM ad_events e"
        " WHERE e.campaign_id = c.id AND e.millicents > 0 AND e.batch IS NULL) LIMIT $1", limit)
    return [(r["id"], r["advertiser_id"]) for r in rows]


async def balances(pool: asyncpg.Pool, advertiser_id: int) -> dict[str, int]:
    rows = await pool.fetch("SELECT kind, sum(balance)::bigint AS cents FROM ledger_accounts WHERE owner_id = $1"
                            " AND kind = ANY($2) GROUP BY 1", advertiser_id, [AD_BALANCE, AD_BUDGET_HELD])
    found = {r["kind"]: r["cents"] for r in rows}
    return {"balance_cents": found.get(AD_BALANCE, 0), "held_cents": found.get(AD_BUDGET_HELD, 0)}
