"""The double-entry ledger: accounts per owner and currency, balanced transactions, idempotent posting.

The database keeps the promises (see migrations/0001_ledger.sql): a transaction balances per currency, a wallet
never goes negative, an external id makes at most one transaction, the journal is append-only and balances move
only with it. This module names the accounts and posts legs; it never adds up money in Python.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from livecore.http import Problem

COIN = "COIN"
DIAMOND = "DIAMOND"
USD = "USD"

# User accounts (wallets: never negative). (kind, currency)
COINS = ("coins", COIN)
EARNINGS_HELD = ("earnings_held", DIAMOND)
EARNINGS_WITHDRAWABLE = ("earnings_withdrawable", DIAMOND)
PAYOUT_PENDING = ("payout_pending", USD)
WALLET_KINDS = frozenset({COINS, EARNINGS_HELD, EARNINGS_WITHDRAWABLE, PAYOUT_PENDING})

# Platform accounts (owner NULL, split in shards, may be negative where they mirror the outside world).
COIN_ISSUANCE = ("coin_issuance", COIN)  # minus the coins in viewers' wallets
DIAMOND_ISSUANCE = ("diamond_issuance", DIAMOND)  # minus every diamond held by creators and the platform
PLATFORM_REVENUE = ("platform_revenue", DIAMOND)  # the platform's share of gifts
PROVIDER_CLEARING = ("provider_clearing", USD)  # money the payment provider owes us (or we owe it)
COIN_SALES = ("coin_sales", USD)  # money received for coins
REFUNDS_AND_DISPUTES = ("refunds_and_disputes", USD)  # money given back
PAYOUT_FUNDING = ("payout_funding", USD)  # money set aside for creators' cash-outs
PAID_OUT = ("paid_out", USD)  # money the payout provider has sent
MERCH_FEES = ("merch_fees", USD)  # minus the platform's fees on merch orders
FULFILMENT_PAYABLE = ("fulfilment_payable", USD)  # minus what the fulfilment provider is owed (base costs, shipping)
MERCH_MARGIN_RELEASED = ("merch_margin_released", USD)  # minus the margins that became creators' earnings

# A creator's account that is not a wallet: minus the margin of their orders not shipped yet (owed, held).
MERCH_MARGIN_HELD = ("merch_margin_held", USD)
# A payer's account that is not a wallet: the diamonds of their accepted offers, held until delivery (escrow.py).
OFFER_ESCROW = ("offer_escrow", DIAMOND)

PLATFORM_KINDS = (COIN_ISSUANCE, DIAMOND_ISSUANCE, PLATFORM_REVENUE, PROVIDER_CLEARING, COIN_SALES,
                  REFUNDS_AND_DISPUTES, PAYOUT_FUNDING, PAID_OUT, MERCH_FEES, FULFILMENT_PAYABLE,
                  MERCH_MARGIN_RELEASED)

WALLET_FROZEN_ERRCODE = "LC001"


@dataclass(frozen=True)
class Leg:
    account_id: int
    currency: str
    amount: int

    def __neg__(self) -> Leg:
        return Leg(self.account_id, self.currency, -self.amount)


class Accounts:
    """Account ids by (owner, kind, currency, shard), created on first use and cached: ids never change.

    Accounts are created on the pool, outside any posting transaction, so a posting that rolls back never
    leaves an id in the cache whose row was rolled back with it. Resolve every leg's account before opening
    the posting transaction.
    """

    def __init__(self, pool: asyncpg.Pool, shards: int) -> None:
        self._pool = pool
        self.shards = shards
        self._ids: dict[tuple[int | None, str, str, int], int] = {}

    async def user(self, owner_id: int, kind: tuple[str, str]) -> int:
        return await self._id(owner_id, kind, 0)

    async def user_shard(self, owner_id: int, kind: tuple[str, str], spread_key: str) -> int:
        """One shard of a user's account chosen by `spread_key`: a creator's held earnings take every gift to
        their stream, and one row for all of them would serialise the room's gifts on its lock."""
        return await self._id(owner_id, kind, zlib.crc32(spread_key.encode()) % self.shards)

    async def user_shards(self, owner_id: int, kind: tuple[str, str]) -> list[int]:
        """Every shard of a user's account, in id order (the order postings lock them in)."""
        return sorted([await self._id(owner_id, kind, shard) for shard in range(self.shards)])

    async def platform(self, kind: tuple[str, str], spread_key: str) -> int:
        """A platform account shard chosen by `spread_key`, so concurrent postings lock different rows."""
        return await self._id(None, kind, zlib.crc32(spread_key.encode()) % self.shards)

    async def create_platform_accounts(self) -> None:
        for kind in PLATFORM_KINDS:
            for shard in range(self.shards):
                await self._id(None, kind, shard)

    async def _id(self, owner_id: int | None, kind: tuple[str, str], shard: int) -> int:
        key = (owner_id, kind[0], kind[1], shard)
        found = self._ids.get(key)
        if found is None:
            # Two statements: after waiting on a concurrent insert of the same account, the SELECT sees it.
            await self._pool.execute(
                "INSERT INTO ledger_accounts (owner_id, kind, currency, shard, is_wallet) VALUES ($1, $2, $3, $4, $5)"
                " ON CONFLICT ON CONSTRAINT one_account_per_owner_kind DO NOTHING",
                owner_id, kind[0], kind[1], shard, kind in WALLET_KINDS,
            )
            found = await self._pool.fetchval(
                "SELECT id FROM ledger_accounts"
                " WHERE owner_id IS NOT DISTINCT FROM $1 AND kind = $2 AND currency = $3 AND shard = $4",
                owner_id, kind[0], kind[1], shard,
            )
            self._ids[key] = found
        return found


_POST = """
WITH t AS (
    INSERT INTO ledger_transactions (kind, external_id, created_ms, actor_id, stream_id, details)
    VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT (external_id) DO NOTHING RETURNING id
), e AS (
    INSERT INTO ledger_entries (transaction_id, account_id, currency, amount)
    SELECT t.id, x.account_id, x.currency, x.amount
    FROM t, unnest($7::bigint[], $8::text[], $9::bigint[]) AS x (account_id, currency, amount)
)
SELECT id FROM t
"""


async def post(
    conn: asyncpg.Connection,
    kind: str,
    external_id: str,
    created_ms: int,
    legs: list[Leg],
    *,
    actor_id: int | None = None,
    stream_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> int | None:
    """Append one transaction; its id, or None when `external_id` already made one (nothing changes then).

    Raises Problem 402 `insufficient-funds` when a wallet would go negative and 403 `wallet-frozen` when a
    frozen wallet would be debited; the caller's database transaction is then unusable and must roll back.
    """
    netted: dict[tuple[int, str], int] = defaultdict(int)
    for leg in legs:
        netted[(leg.account_id, leg.currency)] += leg.amount
    kept = [(a, c, n) for (a, c), n in netted.items() if n != 0]
    try:
        return await conn.fetchval(
            _POST, kind, external_id, created_ms, actor_id, stream_id, orjson.dumps(details or {}).decode(),
            [a for a, _, _ in kept], [c for _, c, _ in kept], [n for _, _, n in kept],
        )
    except asyncpg.CheckViolationError as exc:
        if exc.constraint_name == "wallet_not_negative":
            raise Problem(402, "insufficient-funds", "the wallet does not hold enough for this") from exc
        raise
    except asyncpg.PostgresError as exc:
        if exc.sqlstate == WALLET_FROZEN_ERRCODE:
            raise Problem(403, "wallet-frozen", "this wallet is frozen after a refund or dispute; contact support") \
                from exc
        raise


async def find_transaction(conn: asyncpg.Connection | asyncpg.Pool, external_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT id, kind, created_ms, actor_id, stream_id, details FROM ledger_transactions WHERE external_id = $1",
        external_id,
    )


async def balances(conn: asyncpg.Connection | asyncpg.Pool, owner_id: int) -> dict[str, dict[str, Any]]:
    """The owner's accounts by kind, shards added up: {kind: {currency, balance, frozen}}."""
    rows = await conn.fetch(
        "SELECT kind, currency, sum(balance)::bigint AS balance, bool_or(frozen) AS frozen FROM ledger_accounts"
        " WHERE owner_id = $1 GROUP BY kind, currency", owner_id
    )
    return {r["kind"]: {"currency": r["currency"], "balance": r["balance"], "frozen": r["frozen"]} for r in rows}


async def recent_transactions(conn: asyncpg.Pool, owner_id: int, limit: int) -> list[dict[str, Any]]:
    """The owner's latest transactions, each with the net amount per account kind it moved."""
    rows = await conn.fetch(
        "SELECT t.id, t.kind, t.created_ms, t.stream_id, t.details, a.kind AS account, e.currency, e.amount"
        " FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id"
        " JOIN ledger_transactions t ON t.id = e.transaction_id"
        " WHERE e.account_id IN (SELECT id FROM ledger_accounts WHERE owner_id = $1)"
        " ORDER BY e.id DESC LIMIT $2",
        owner_id, limit,
    )
    by_id: dict[int, dict[str, Any]] = {}
    for r in rows:
        item = by_id.setdefault(r["id"], {
            "id": r["id"], "kind": r["kind"], "ts": r["created_ms"], "stream_id": r["stream_id"],
            "details": orjson.loads(r["details"]), "moves": [],
        })
        item["moves"].append({"account": r["account"], "currency": r["currency"], "amount": r["amount"]})
    return list(by_id.values())


def details_of(transaction: asyncpg.Record) -> dict[str, Any]:
    return orjson.loads(transaction["details"])
