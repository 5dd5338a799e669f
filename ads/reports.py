"""A campaign's report: totals and rows per hour or per UTC day from the hourly roll-ups."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import asyncpg

from ads.pacing import DAY_MS, HOUR_MS

Period = Literal["hour", "day"]
_COUNTS = ("impressions", "viewable", "q25", "q50", "q75", "complete", "clicks")


def _figures(row: dict[str, int]) -> dict[str, Any]:
    impressions, spend = row["impressions"], row["spend_millicents"]
    return {**{k: row[k] for k in _COUNTS}, "spend_cents": spend / 1000,
            "ctr": row["clicks"] / impressions if impressions else 0.0,
            "ecpm_cents": spend / impressions if impressions else 0.0}  # millicents per impression = cents per mille


async def campaign_report(pool: asyncpg.Pool, campaign_id: int, period: Period) -> dict[str, Any]:
    step = HOUR_MS if period == "hour" else DAY_MS
    rows = await pool.fetch(
        "SELECT hour_ms - hour_ms % $2 AS start_ms, " + ", ".join(f"sum({c})::bigint AS {c}" for c in _COUNTS)
        + ", sum(spend_millicents)::bigint AS spend_millicents FROM ad_stats_hourly WHERE campaign_id = $1"
        " GROUP BY 1 ORDER BY 1", campaign_id, step)
    totals = {k: sum(r[k] for r in rows) for k in (*_COUNTS, "spend_millicents")}
    return {"campaign_id": campaign_id, "period": period, "totals": _figures(totals),
            "rows": [{"start": dt.datetime.fromtimestamp(r["start_ms"] / 1000, tz=dt.UTC).isoformat(),
                      **_figures(dict(r))} for r in rows]}
