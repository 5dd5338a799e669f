"""Creator marketplace search: latency over 100,000 synthetic creators' precomputed cards (target p95 <= 100 ms).

Not a test. Starts embedded PostgreSQL and Valkey and one `livecore serve` node, writes `--creators` listed
creators' cards straight into the database (random followers, median views, engagement, growth, audience shares by
age band, region and interest, as the card job stores them), signs up one advertiser through the API, then sends
`--requests` searches from `--clients` concurrent clients, a mix of what the marketplace page asks (no filter,
thresholds, an age band's share, a region's share with an interest, deep cursor pages, each sort), and prints
latency percentiles per kind of search and overall.

    .venv/bin/python benchmarks/marketplace_search.py --creators 100000 --requests 3000 --clients 4
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections import defaultdict
from typing import Any

import aiohttp
import asyncpg
from benchnode import bench_node, sign_up

from ads.marketplace.audience import AGE_BANDS
from ads.marketplace.cards import index_audience

REGIONS = ["US", "GB", "DE", "FR", "BR", "JP", "IN", "NG", "MX", "ES"]
INTERESTS = [f"interest{i}" for i in range(30)]
SORTS = ["followers", "engagement_rate", "median_views", "growth"]
DEEP_PAGES = 5
PAGE_ITEMS = 20
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=10)

_FILL = """
WITH made AS (
    INSERT INTO accounts (username, password_hash, display_name, birth_date, region, roles)
    SELECT 'mc' || $1::text || '_' || g, '!', 'Creator ' || g, '1990-01-01', ($2::text[])[1 + g % 10],
           '{viewer,creator}' FROM generate_series(1, $3) g RETURNING id
), cards AS (
    SELECT id, (power(random(), 3) * 2000000)::bigint + 1000 AS followers,
           jsonb_strip_nulls(jsonb_build_object(
               '13-17', CASE WHEN random() < .5 THEN round(random()::numeric * .2, 4) END,
               '18-24', CASE WHEN random() < .9 THEN round(random()::numeric * .6, 4) END,
               '25-34', CASE WHEN random() < .9 THEN round(random()::numeric * .5, 4) END,
               '35-44', CASE WHEN random() < .7 THEN round(random()::numeric * .3, 4) END,
               '45-54', CASE WHEN random() < .5 THEN round(random()::numeric * .2, 4) END,
               '55+', CASE WHEN random() < .4 THEN round(random()::numeric * .1, 4) END)) AS ages,
           -- (made.id in the subqueries makes them run per creator, not once for all)
           ARRAY(SELECT r FROM unnest($2::text[]) r WHERE random() < .3 AND made.id > 0) AS regions,
           ARRAY(SELECT i FROM unnest($4::text[]) i WHERE random() < .1 AND made.id > 0) AS interests
    FROM made
)
INSERT INTO marketplace_creators (creator_id, eligible, followers, recent_videos, median_views, engagement_rate,
    followers_gained, growth_rate, age_shares, region_shares, interest_shares, computed_ms)
SELECT id, true, followers, 30, (random() * followers * .5)::bigint, round(random()::numeric * .15, 4)::float8,
       (random() * followers * .1)::bigint, round(random()::numeric * .2, 4)::float8, ages,
       coalesce((SELECT jsonb_object_agg(r, round(random()::numeric * .6, 4)) FROM unnest(regions) r), '{}'),
       coalesce((SELECT jsonb_object_agg(i, round(random()::numeric * .4, 4)) FROM unnest(interests) i), '{}'),
       (extract(epoch FROM now()) * 1000)::bigint
FROM cards
RETURNING creator_id
"""


async def _fill(database_url: str, creators: int, advertiser_id: int) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        started = time.monotonic()
        batch = 10_000
        for first in range(0, creators, batch):
            rows = await conn.fetch(_FILL, str(first), REGIONS, min(batch, creators - first), INTERESTS)
            await index_audience(conn, [r["creator_id"] for r in rows])
        await conn.execute("UPDATE accounts SET roles = roles || '{advertiser}' WHERE id = $1", advertiser_id)
        # As autovacuum leaves a table in steady state: statistics, and a visibility map that lets the audience
        # index answer alone (index-only scans) instead of visiting every heap page of a group.
        await conn.execute("VACUUM ANALYZE marketplace_creators, marketplace_audience")
        print(f"{creators} creator cards written in {time.monotonic() - started:.1f} s")
    finally:
        await conn.close()


def _search(rng: random.Random) -> tuple[str, dict[str, Any]]:
    """One search of the mix: (its kind, its query)."""
    kind = rng.choice(["no filter", "thresholds", "age band share", "region and interest", "deep pages"])
    query: dict[str, Any] = {"sort": rng.choice(SORTS), "limit": PAGE_ITEMS}
    if kind == "thresholds":
        query.update(followers_min=rng.choice([10_000, 100_000, 500_000]), engagement_rate_min=rng.choice([2, 5, 10]),
                     median_views_min=rng.choice([1000, 10_000]))
    elif kind == "age band share":
        query.update(age_band=rng.choice(AGE_BANDS[1:4]), age_band_share_min=rng.choice([20, 30, 40]))
    elif kind == "region and interest":
        query.update(region=rng.choice(REGIONS), region_share_min=rng.choice([10, 30]),
                     interest=rng.choice(INTERESTS))
    return kind, query


async def _client(http: aiohttp.ClientSession, url: str, token: str, count: int, seed: int,
                  latencies: dict[str, list[float]], errors: list[str]) -> None:
    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(count):
        kind, query = _search(rng)
        cursor = None
        for _page in range(DEEP_PAGES if kind == "deep pages" else 1):
            params = {**query, **({"cursor": cursor} if cursor else {})}
            started = time.perf_counter()
            async with http.get(f"{url}/api/marketplace/creators", params=params, headers=headers,
                                timeout=REQUEST_TIMEOUT) as response:
                body = await response.json()
            latencies[kind].append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                errors.append(f"{response.status} {body}")
                break
            cursor = body["next_cursor"]
            if cursor is None:
                break


def _percentiles(values: list[float]) -> str:
    ordered = sorted(values)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]

    return f"p50 {pct(.5):6.1f} ms  p95 {pct(.95):6.1f} ms  p99 {pct(.99):6.1f} ms  max {ordered[-1]:6.1f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--creators", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=3000, help="searches in all (a deep one is several pages)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients, each one request at a time")
    args = parser.parse_args()
    with bench_node() as node:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            await node.wait_ready(http)
            brand = await sign_up(http, node.url)
            await _fill(node.database_url, args.creators, brand["id"])
            latencies: dict[str, list[float]] = defaultdict(list)
            errors: list[str] = []
            warm: dict[str, list[float]] = defaultdict(list)
            await _client(http, node.url, brand["token"], 50, 0, warm, errors)  # connections and plans
            before = node.meter.sample()
            started = time.monotonic()
            await asyncio.gather(*[
                _client(http, node.url, brand["token"], args.requests // args.clients, seed, latencies, errors)
                for seed in range(1, args.clients + 1)])
            elapsed = time.monotonic() - started
            every = [v for values in latencies.values() for v in values]
            print(f"{len(every)} search pages in {elapsed:.1f} s ({len(every) / elapsed:.0f}/s) from {args.clients} "
                  f"clients over {args.creators} creators; errors {len(errors)} {errors[:3]}")
            for kind, values in sorted(latencies.items()):
                print(f"  {kind:20s} {len(values):5d}  {_percentiles(values)}")
            print(f"  {'all':20s} {len(every):5d}  {_percentiles(every)}")
            after = node.meter.sample()
            print("CPU seconds: " + ", ".join(f"{name} {after[name] - before.get(name, 0):.1f}"
                                              for name in sorted(after)))


if __name__ == "__main__":
    asyncio.run(main())
