"""The ledger's invariants as queries: used after every step of the property tests and by the benchmark."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

_CHECKS: dict[str, str] = {
    "every transaction balances per currency":
        "SELECT transaction_id, currency FROM ledger_entries GROUP BY 1, 2 HAVING sum(amount) <> 0",
    "every transaction has at least two entries":
        "SELECT t.id FROM ledger_transactions t LEFT JOIN ledger_entries e ON e.transaction_id = t.id"
        " GROUP BY t.id HAVING count(e.id) < 2",
    "no wallet is negative":
        "SELECT id, balance FROM ledger_accounts WHERE is_wallet AND balance < 0",
    "account balances equal the journal":
        "SELECT a.id, a.balance, coalesce(s.total, 0) AS journal FROM ledger_accounts a"
        " LEFT JOIN (SELECT account_id, sum(amount) AS total FROM ledger_entries GROUP BY 1) s"
        " ON s.account_id = a.id WHERE a.balance <> coalesce(s.total, 0)",
    "coins outstanding equal the sum of viewer wallets":
        "SELECT o.outstanding, w.wallets FROM"
        " (SELECT coalesce(-sum(balance), 0) AS outstanding FROM ledger_accounts WHERE kind = 'coin_issuance') o,"
        " (SELECT coalesce(sum(balance), 0) AS wallets FROM ledger_accounts WHERE kind = 'coins') w"
        " WHERE o.outstanding <> w.wallets",
    "every external id made at most one transaction":
        "SELECT external_id FROM ledger_transactions GROUP BY 1 HAVING count(*) > 1",
    "every purchase credited at most once":
        "SELECT details->>'purchase_id' FROM ledger_transactions WHERE kind = 'purchase'"
        " GROUP BY 1 HAVING count(*) > 1",
    "a credited purchase's reversals give back exactly what the provider did, an uncredited one's nothing":
        "SELECT c.id, c.reversed_cents, r.cents FROM coin_purchases c LEFT JOIN (SELECT details->>'purchase_id'"
        " AS purchase_id, sum((details->>'cents_given_back')::bigint) AS cents FROM ledger_transactions"
        " WHERE kind = 'reversal' GROUP BY 1) r ON r.purchase_id = c.id::text"
        " WHERE coalesce(r.cents, 0) <> CASE WHEN EXISTS (SELECT 1 FROM ledger_transactions p"
        " WHERE p.kind = 'purchase' AND p.details->>'purchase_id' = c.id::text) THEN c.reversed_cents ELSE 0 END",
    "a succeeded purchase was credited, and only succeeded or reversed ones were":
        "SELECT c.id, c.state FROM coin_purchases c LEFT JOIN ledger_transactions t ON t.kind = 'purchase'"
        " AND t.details->>'purchase_id' = c.id::text"
        " WHERE (c.state = 'succeeded' AND t.id IS NULL) OR (c.state IN ('created', 'failed') AND t.id IS NOT NULL)",
    "the leaderboard equals the journal's gifts":
        "SELECT l.stream_id, l.sender_id FROM gift_leaders l FULL JOIN (SELECT stream_id, actor_id AS sender_id,"
        " sum((details->>'coins')::bigint) AS coins FROM ledger_transactions WHERE kind = 'gift' GROUP BY 1, 2) j"
        " USING (stream_id, sender_id) WHERE l.coins IS DISTINCT FROM j.coins",
    "every paid order was posted once, and only paid orders were":
        "SELECT o.id FROM orders o LEFT JOIN (SELECT details->>'order_id' AS order_id, count(*) AS n"
        " FROM ledger_transactions WHERE kind = 'order_paid' GROUP BY 1) t ON t.order_id = o.id::text"
        " WHERE coalesce(t.n, 0) <> (o.paid_ms IS NOT NULL)::int",
    "an order's reversals give back exactly what it says it gave back":
        "SELECT o.id, o.reversed_cents, r.cents FROM orders o LEFT JOIN (SELECT details->>'order_id' AS order_id,"
        " sum((details->>'cents_given_back')::bigint) AS cents FROM ledger_transactions"
        " WHERE kind = 'order_reversal' GROUP BY 1) r ON r.order_id = o.id::text"
        " WHERE coalesce(r.cents, 0) <> o.reversed_cents OR (o.paid_ms IS NULL AND o.reversed_cents <> 0)",
    "a failed, cancelled or returned order that was paid was given back in full":
        "SELECT id, state, reversed_cents FROM orders WHERE paid_ms IS NOT NULL"
        " AND state IN ('failed', 'cancelled', 'returned') AND reversed_cents <> total_cents",
    "an order's margin is released once, when (and only when) a paid order has shipped":
        "SELECT o.id, o.state FROM orders o LEFT JOIN (SELECT details->>'order_id' AS order_id, count(*) AS n"
        " FROM ledger_transactions WHERE kind = 'order_margin_released' GROUP BY 1) t ON t.order_id = o.id::text"
        " WHERE coalesce(t.n, 0) > 1 OR (coalesce(t.n, 0) = 1 AND o.margin_released_ms IS NULL)"
        " OR (o.margin_released_ms IS NOT NULL) <> (o.paid_ms IS NOT NULL AND o.state IN ('shipped', 'delivered',"
        " 'returned'))",
    "the fulfilment provider is owed the cost of paid orders less what was given back of it":
        "SELECT p.owed, o.cost FROM (SELECT coalesce(-sum(balance), 0) AS owed FROM ledger_accounts"
        " WHERE kind = 'fulfilment_payable') p, (SELECT coalesce(sum(cost_cents - cost_cents * reversed_cents"
        " / total_cents), 0) AS cost FROM orders WHERE paid_ms IS NOT NULL) o WHERE p.owed <> o.cost",
    "merch fees are the fees of paid orders less what was given back of them":
        "SELECT f.fees, o.fees FROM (SELECT coalesce(-sum(balance), 0) AS fees FROM ledger_accounts"
        " WHERE kind = 'merch_fees') f, (SELECT coalesce(sum(fee_cents - fee_cents * reversed_cents"
        " / total_cents), 0) AS fees FROM orders WHERE paid_ms IS NOT NULL) o WHERE f.fees <> o.fees",
    "each creator's held margin is that of their paid orders not shipped, less what was given back of it":
        "SELECT coalesce(a.owner_id, o.creator_id) AS creator_id, a.held, o.held FROM (SELECT owner_id,"
        " -sum(balance) AS held FROM ledger_accounts WHERE kind = 'merch_margin_held' GROUP BY 1) a FULL JOIN"
        " (SELECT creator_id, sum(margin_cents - (reversed_cents - fee_cents * reversed_cents / total_cents"
        " - cost_cents * reversed_cents / total_cents)) AS held FROM orders WHERE paid_ms IS NOT NULL"
        " AND margin_released_ms IS NULL GROUP BY 1) o ON o.creator_id = a.owner_id"
        " WHERE coalesce(a.held, 0) <> coalesce(o.held, 0)",
    "released margins are those of shipped orders less what was given back of them":
        "SELECT r.released, o.released FROM (SELECT coalesce(-sum(balance), 0) AS released FROM ledger_accounts"
        " WHERE kind = 'merch_margin_released') r, (SELECT coalesce(sum(margin_cents - (reversed_cents"
        " - fee_cents * reversed_cents / total_cents - cost_cents * reversed_cents / total_cents)), 0) AS released"
        " FROM orders WHERE margin_released_ms IS NOT NULL) o WHERE r.released <> o.released",
    "the payment provider was asked to refund no more than orders gave back":
        "SELECT id FROM orders WHERE refund_sent_cents > reversed_cents",
    "an escrowed deal is held once, then released or given back at most once (never both)":
        "SELECT details->>'ref' AS ref FROM ledger_transactions"
        " WHERE kind IN ('escrow_held', 'escrow_released', 'escrow_returned') GROUP BY 1"
        " HAVING count(*) FILTER (WHERE kind = 'escrow_held') <> 1"
        " OR count(*) FILTER (WHERE kind <> 'escrow_held') > 1",
    "each payer's escrow holds exactly the diamonds of their deals held and not yet settled":
        "SELECT coalesce(a.owner_id, h.payer_id) AS payer_id, a.held, h.held FROM (SELECT owner_id,"
        " sum(balance) AS held FROM ledger_accounts WHERE kind = 'offer_escrow' GROUP BY 1) a FULL JOIN"
        " (SELECT t.actor_id AS payer_id, sum((t.details->>'diamonds')::bigint) AS held FROM ledger_transactions t"
        " WHERE t.kind = 'escrow_held' AND NOT EXISTS (SELECT 1 FROM ledger_transactions s"
        " WHERE s.kind IN ('escrow_released', 'escrow_returned') AND s.details->>'ref' = t.details->>'ref')"
        " GROUP BY 1) h ON h.payer_id = a.owner_id WHERE coalesce(a.held, 0) <> coalesce(h.held, 0)",
}


async def violations(pool: asyncpg.Pool, checks: Mapping[str, str] = _CHECKS) -> list[str]:
    """Each broken invariant with a sample of the rows that break it; empty when the ledger is sound. `checks`
    (name -> a query whose rows break it) lets another context check its own promises the same way, in one
    snapshot."""
    found = []
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        for name, query in checks.items():
            rows = await conn.fetch(query + " LIMIT 5")
            if rows:
                found.append(f"{name}: {[dict(r) for r in rows]}")
    return found
