"""Searching listed creators by their precomputed cards: filters, one sort order, keyset (cursor) pagination.

Every sort has a partial index (followers, engagement_rate, median_views, growth_rate; then creator_id), so a page
walks the index and stops at `limit` matches instead of sorting every card.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
import orjson

from ads.marketplace.cards import CARD_COLUMNS, card_view
from livecore.http import BIGINT_MAX, Problem

Sort = Literal["followers", "engagement_rate", "median_views", "growth"]
_SORT_COLUMNS: dict[str, str] = {"followers": "followers", "engagement_rate": "engagement_rate",
                                 "median_views": "median_views", "growth": "growth_rate"}


@dataclass(frozen=True)
class Filters:
    """What a search asks for; shares are fractions (0.3 = 30 % of followers)."""

    followers_min: int = 0
    engagement_rate_min: float = 0.0
    median_views_min: int = 0
    age_band: str | None = None
    age_band_share_min: float = 0.0
    region: str | None = None
    region_share_min: float = 0.0
    interest: str | None = None
    sort: Sort = "followers"


async def search(pool: asyncpg.Pool, filters: Filters, cursor: str | None, limit: int,
                 candidates_max: int) -> dict[str, Any]:
    """A page of listed creators matching `filters`, best first by `filters.sort`, and the next page's cursor."""
    column = _SORT_COLUMNS[filters.sort]
    where = ["m.listed", "m.eligible", "m.followers >= $1", "m.engagement_rate >= $2", "m.median_views >= $3"]
    args: list[Any] = [filters.followers_min, filters.engagement_rate_min, filters.median_views_min]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    groups = [(dimension, group, share_min) for dimension, group, share_min in (
        ("age", filters.age_band, filters.age_band_share_min), ("region", filters.region, filters.region_share_min),
        ("interest", filters.interest, 0.0)) if group is not None]
    candidates = await _candidates(pool, groups, candidates_max)
    if candidates is not None:
        where.append(f"m.creator_id = ANY({arg(candidates)}::bigint[])")
    for dimension, group, share_min in groups:
        # OFFSET 0 keeps it one index probe per card met: the planner would otherwise read the whole group into a
        # hash (or join it) first, however few cards the page needs
        where.append(f"EXISTS (SELECT 1 FROM marketplace_audience x WHERE x.creator_id = m.creator_id AND"
                     f" x.dimension = {arg(dimension)} AND x.grp = {arg(group)} AND x.share >= {arg(share_min)}"
                     " OFFSET 0)")
    if cursor is not None:
        value, after_id = _decode(cursor, filters.sort)
        where.append(f"(m.{column}, m.creator_id) < ({arg(value)}, {arg(after_id)})")
    rows = await pool.fetch(
        f"SELECT {CARD_COLUMNS}, m.{column} AS sort_value FROM marketplace_creators m"
        f" JOIN accounts a ON a.id = m.creator_id WHERE {' AND '.join(where)}"
        f" ORDER BY m.{column} DESC, m.creator_id DESC LIMIT {arg(limit + 1)}", *args)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = _encode(filters.sort, rows[-1]["sort_value"], rows[-1]["creator_id"]) if more else None
    return {"items": [card_view(r) for r in rows], "next_cursor": next_cursor}


async def _candidates(pool: asyncpg.Pool, groups: list[tuple[str, str, float]],
                     candidates_max: int) -> list[int] | None:
    """The creators in every audience group asked for, when they are few (at most `candidates_max`): a page then
    reads those cards by id. Else None: matches are common enough that walking the sort order meets them soon."""
    if not groups:
        return None
    args: list[Any] = []
    conditions = []
    for i, (dimension, group, share_min) in enumerate(groups):
        args += [dimension, group, share_min]
        n = len(args)
        conditions.append(f"g{i}.dimension = ${n - 2} AND g{i}.grp = ${n - 1} AND g{i}.share >= ${n}"
                          + (f" AND g{i}.creator_id = g0.creator_id" if i else ""))
    first, *others = conditions
    query = f"SELECT g0.creator_id FROM marketplace_audience g0 WHERE {first}" + "".join(
        f" AND EXISTS (SELECT 1 FROM marketplace_audience g{i} WHERE {c})" for i, c in enumerate(others, start=1))
    rows = await pool.fetch(f"{query} LIMIT ${len(args) + 1}", *args, candidates_max + 1)
    return [r["creator_id"] for r in rows] if len(rows) <= candidates_max else None


def _encode(sort: str, value: float | int, creator_id: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([sort, value, creator_id])).decode().rstrip("=")


def _decode(cursor: str, sort: str) -> tuple[float | int, int]:
    bad = Problem(400, "bad-cursor", "the cursor is not one this search gave (or its sort changed)", field="cursor")
    try:
        found = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, orjson.JSONDecodeError, ValueError) as exc:
        raise bad from exc
    if (not isinstance(found, list) or len(found) != 3 or found[0] != sort
            or not isinstance(found[1], int | float) or isinstance(found[1], bool) or not isinstance(found[2], int)):
        raise bad
    if not 1 <= found[2] <= BIGINT_MAX or abs(found[1]) > BIGINT_MAX:
        raise bad
    if sort in ("followers", "median_views"):
        if not isinstance(found[1], int):
            raise bad
        return found[1], found[2]
    return float(found[1]), found[2]
