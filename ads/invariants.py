"""The ads context's promises about money, as queries (like commerce/invariants.py): checked by the tests."""

from __future__ import annotations

import asyncpg

from commerce import invariants

_CHECKS: dict[str, str] = {
    "a campaign's charges add up to what it says it charged":
        "SELECT c.id, c.charged_millicents, e.total FROM ad_campaigns c LEFT JOIN (SELECT campaign_id,"
        " sum(millicents) AS total FROM ad_events GROUP BY 1) e ON e.campaign_id = c.id"
        " WHERE c.charged_millicents <> coalesce(e.total, 0)",
    "a campaign's posted charges add up to what it says was billed":
        "SELECT c.id, c.billed_millicents, e.total FROM ad_campaigns c LEFT JOIN (SELECT campaign_id,"
        " sum(millicents) AS total FROM ad_events WHERE batch IS NOT NULL GROUP BY 1) e ON e.campaign_id = c.id"
        " WHERE c.billed_millicents <> coalesce(e.total, 0)",
    "a campaign's billed cents are its spend transactions, whole cents of what was billed":
        "SELECT c.id, c.billed_cents, t.cents FROM ad_campaigns c LEFT JOIN (SELECT (details->>'campaign_id')::bigint"
        " AS id, sum((details->>'cents')::bigint) AS cents FROM ledger_transactions WHERE kind = 'ads_spend'"
        " GROUP BY 1) t ON t.id = c.id WHERE c.billed_cents <> coalesce(t.cents, 0)"
        " OR c.billed_cents <> c.billed_millicents / 1000",
    "every campaign's budget was reserved once":
        "SELECT c.id FROM ad_campaigns c LEFT JOIN (SELECT (details->>'campaign_id')::bigint AS id, count(*) AS n,"
        " sum((details->>'cents')::bigint) AS cents FROM ledger_transactions WHERE kind = 'ads_budget_reserved'"
        " GROUP BY 1) t ON t.id = c.id WHERE t.n IS DISTINCT FROM 1 OR t.cents <> c.budget_lifetime_cents",
    "an advertiser's held budget is what their campaigns reserved less what they were billed and given back":
        "SELECT coalesce(a.owner_id, c.advertiser_id) AS advertiser, a.held, c.held FROM (SELECT owner_id,"
        " sum(balance) AS held FROM ledger_accounts WHERE kind = 'ad_budget_held' GROUP BY 1) a FULL JOIN"
        " (SELECT advertiser_id, sum(budget_lifetime_cents - billed_cents - returned_cents) AS held FROM ad_campaigns"
        " GROUP BY 1) c"
        " ON c.advertiser_id = a.owner_id WHERE coalesce(a.held, 0) <> coalesce(c.held, 0)",
    "a settled campaign's unspent budget was given back once, exactly what it was not billed":
        "SELECT c.id, c.returned_cents, t.n, t.cents FROM ad_campaigns c LEFT JOIN (SELECT"
        " (details->>'campaign_id')::bigint AS id, count(*) AS n, sum((details->>'cents')::bigint) AS cents"
        " FROM ledger_transactions WHERE kind = 'ads_budget_returned' GROUP BY 1) t ON t.id = c.id"
        " WHERE (c.settled_ms IS NULL AND (t.n IS NOT NULL OR c.returned_cents <> 0))"
        " OR (c.settled_ms IS NOT NULL AND (c.returned_cents <> c.budget_lifetime_cents - c.billed_cents"
        " OR coalesce(t.n, 0) <> (c.returned_cents > 0)::int OR coalesce(t.cents, 0) <> c.returned_cents))",
    "a settled campaign has no charge left unposted":
        "SELECT id, charged_millicents, billed_millicents FROM ad_campaigns WHERE settled_ms IS NOT NULL"
        " AND (charged_millicents <> billed_millicents OR EXISTS (SELECT 1 FROM ad_events e WHERE"
        " e.campaign_id = ad_campaigns.id AND e.millicents > 0 AND e.batch IS NULL))",
    "an offer's escrow postings are those of its state (held while accepted; then released on delivery, or given"
    " back on decline, cancel or expiry)":
        "SELECT o.id, o.state, t.kinds FROM marketplace_offers o LEFT JOIN (SELECT details->>'ref' AS ref,"
        " array_agg(kind ORDER BY kind) AS kinds FROM ledger_transactions WHERE kind IN ('escrow_held',"
        " 'escrow_released', 'escrow_returned') GROUP BY 1) t ON t.ref = 'offer:' || o.id"
        " WHERE coalesce(t.kinds, '{}') <> CASE WHEN o.accepted_ms IS NULL THEN '{}'::text[]"
        " WHEN o.state = 'accepted' THEN '{escrow_held}'::text[]"
        " WHEN o.state = 'delivered' THEN '{escrow_held,escrow_released}'::text[]"
        " ELSE '{escrow_held,escrow_returned}'::text[] END",
    "ad revenue is every campaign's billed cents":
        "SELECT r.cents, c.cents FROM (SELECT coalesce(sum(balance), 0) AS cents FROM ledger_accounts"
        " WHERE kind = 'ad_revenue') r, (SELECT coalesce(sum(billed_cents), 0) AS cents FROM ad_campaigns) c"
        " WHERE r.cents <> c.cents",
}


async def violations(pool: asyncpg.Pool) -> list[str]:
    """Each broken promise with a sample of the rows that break it; empty when all hold."""
    return await invariants.violations(pool, _CHECKS)
