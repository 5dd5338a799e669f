"""Creator earnings and cash-out: held diamonds become withdrawable after the hold window; a payout turns
withdrawable diamonds into cents sent by the payout provider, and is reversed into the wallet if it fails."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import asyncpg

from commerce import ledger, rules
from commerce.ledger import Leg
from commerce.providers import PayoutFailed
from livecore.accounts import Account
from livecore.http import Problem

if TYPE_CHECKING:
    from commerce.service import Commerce

log = logging.getLogger("livecore.commerce.payouts")


async def release_earnings(commerce: Commerce, conn: asyncpg.Connection, creator_id: int) -> int:
    """Move held diamonds whose hold window has passed to withdrawable (inside the caller's transaction)."""
    shards = await commerce.accounts.user_shards(creator_id, ledger.EARNINGS_HELD)
    await conn.execute("SELECT 1 FROM ledger_accounts WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE", shards)
    cutoff_ms = commerce.node.clock.now_ms() - commerce.node.settings.earnings_hold_s * 1000
    # Per shard, everything credited before the cutoff minus everything already released: both only grow.
    rows = await conn.fetch(
        "SELECT e.account_id,"
        " coalesce(sum(e.amount) FILTER (WHERE e.amount > 0 AND t.created_ms <= $2), 0)::bigint AS matured,"
        " coalesce(-sum(e.amount) FILTER (WHERE e.amount < 0), 0)::bigint AS released"
        " FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id"
        " WHERE e.account_id = ANY($1::bigint[]) GROUP BY e.account_id ORDER BY e.account_id",
        shards, cutoff_ms,
    )
    legs = [Leg(r["account_id"], ledger.DIAMOND, -(r["matured"] - r["released"]))
            for r in rows if r["matured"] > r["released"]]
    amount = -sum(leg.amount for leg in legs)
    if amount <= 0:
        return 0
    matured = sum(r["matured"] for r in rows)
    legs.append(Leg(await commerce.accounts.user(creator_id, ledger.EARNINGS_WITHDRAWABLE), ledger.DIAMOND, amount))
    await ledger.post(conn, "release", f"release:{creator_id}:{matured}", commerce.node.clock.now_ms(), legs,
                      actor_id=creator_id, details={"diamonds": amount})
    return amount


async def earnings(commerce: Commerce, creator_id: int) -> dict[str, Any]:
    """The creator's earnings after releasing what has matured."""
    await commerce.accounts.user_shards(creator_id, ledger.EARNINGS_HELD)
    await commerce.accounts.user(creator_id, ledger.EARNINGS_WITHDRAWABLE)
    async with commerce.node.pool.acquire() as conn, conn.transaction():
        await release_earnings(commerce, conn, creator_id)
    found = await ledger.balances(commerce.node.pool, creator_id)
    rate = commerce.catalogue.rate
    withdrawable = found.get("earnings_withdrawable", {}).get("balance", 0)
    return {
        "held_diamonds": found.get("earnings_held", {}).get("balance", 0),
        "withdrawable_diamonds": withdrawable,
        "withdrawable_cents": withdrawable // rate.diamonds_per_cent,
        "payout_pending_cents": found.get("payout_pending", {}).get("balance", 0),
        "diamonds_per_cent": rate.diamonds_per_cent,
        "hold_s": commerce.node.settings.earnings_hold_s,
        "payout_cents_min": commerce.node.settings.payout_cents_min,
    }


async def request_payout(commerce: Commerce, creator: Account, amount_cents: int, idempotency_key: str) -> dict:
    """Cash out `amount_cents`; a retry with the same key returns the same payout."""
    node, settings = commerce.node, commerce.node.settings
    rules.require_adult(creator, node.today(), "cash out")
    if amount_cents < settings.payout_cents_min:
        raise Problem(400, "rule-payout-minimum", f"payouts start at {settings.payout_cents_min} cents",
                      rule="payout_cents_min", limit_value=settings.payout_cents_min)
    diamonds = amount_cents * commerce.catalogue.rate.diamonds_per_cent
    now_ms = node.clock.now_ms()
    # Resolve the accounts before the transaction holds a connection.
    await commerce.accounts.user_shards(creator.id, ledger.EARNINGS_HELD)
    for kind in (ledger.EARNINGS_WITHDRAWABLE, ledger.PAYOUT_PENDING):
        await commerce.accounts.user(creator.id, kind)
    async with node.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "INSERT INTO payouts (creator_id, idempotency_key, amount_cents, diamonds, provider, created_ms)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (creator_id, idempotency_key) DO NOTHING RETURNING *",
            creator.id, idempotency_key, amount_cents, diamonds, commerce.payouts.name, now_ms,
        )
        if row is None:
            return payout_view(await conn.fetchrow(
                "SELECT * FROM payouts WHERE creator_id = $1 AND idempotency_key = $2", creator.id, idempotency_key))
        await release_earnings(commerce, conn, creator.id)
        legs = await _payout_legs(commerce, conn, row)
        try:
            await ledger.post(conn, "payout", f"payout:{row['id']}", now_ms, legs, actor_id=creator.id,
                              details={"payout_id": row["id"], "amount_cents": amount_cents, "diamonds": diamonds})
        except Problem as exc:
            if exc.slug == "insufficient-funds":
                raise Problem(402, "insufficient-earnings", f"{amount_cents} cents needs {diamonds} withdrawable "
                              "diamonds; earnings become withdrawable after the hold window") from exc
            raise
    try:
        ref = await commerce.payouts.send_payout(creator.id, amount_cents, f"payout-{row['id']}")
    except PayoutFailed as exc:
        return payout_view(await settle_payout(commerce, row["id"], ok=False, failure=str(exc)))
    return payout_view(await settle_payout(commerce, row["id"], ok=True, provider_ref=ref))


async def _payout_legs(commerce: Commerce, conn: asyncpg.Connection, payout: asyncpg.Record) -> list[Leg]:
    accounts, spread = commerce.accounts, f"payout:{payout['id']}"
    return [
        Leg(await accounts.user(payout["creator_id"], ledger.EARNINGS_WITHDRAWABLE), ledger.DIAMOND,
            -payout["diamonds"]),
        Leg(await accounts.platform(ledger.DIAMOND_ISSUANCE, spread), ledger.DIAMOND, payout["diamonds"]),
        Leg(await accounts.platform(ledger.PAYOUT_FUNDING, spread), ledger.USD, -payout["amount_cents"]),
        Leg(await accounts.user(payout["creator_id"], ledger.PAYOUT_PENDING), ledger.USD,
            payout["amount_cents"]),
    ]


async def settle_payout(
    commerce: Commerce, payout_id: int, *, ok: bool, provider_ref: str | None = None, failure: str = ""
) -> asyncpg.Record:
    """Record the provider's answer once: paid moves the pending cents out; failed reverses the whole payout."""
    async with commerce.node.pool.acquire() as conn, conn.transaction():
        payout = await conn.fetchrow("SELECT * FROM payouts WHERE id = $1 FOR UPDATE", payout_id)
        if payout is None or payout["state"] != "pending":
            return payout
        accounts, spread = commerce.accounts, f"payout:{payout_id}"
        pending = Leg(await accounts.user(payout["creator_id"], ledger.PAYOUT_PENDING), ledger.USD,
                      -payout["amount_cents"])
        if ok:
            legs = [pending, Leg(await accounts.platform(ledger.PAID_OUT, spread), ledger.USD,
                                 payout["amount_cents"])]
        else:
            legs = [-leg for leg in await _payout_legs(commerce, conn, payout)]
        kind = "payout_paid" if ok else "payout_failed"
        await ledger.post(conn, kind, f"{kind}:{payout_id}", commerce.node.clock.now_ms(), legs,
                          actor_id=payout["creator_id"], details={"payout_id": payout_id, "failure": failure})
        commerce.metrics.ledger_transactions.labels(kind=kind).inc()
        return await conn.fetchrow(
            "UPDATE payouts SET state = $2, provider_ref = $3, failure = $4 WHERE id = $1 RETURNING *",
            payout_id, "paid" if ok else "failed", provider_ref, failure or None,
        )


def payout_view(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "amount_cents": row["amount_cents"], "diamonds": row["diamonds"], "state": row["state"],
            "provider": row["provider"], "failure": row["failure"], "ts": row["created_ms"]}


async def list_payouts(pool: asyncpg.Pool, creator_id: int, limit: int) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT * FROM payouts WHERE creator_id = $1 ORDER BY id DESC LIMIT $2", creator_id, limit)
    return [payout_view(r) for r in rows]
