"""Feeds: page latency at a fixed request rate, and how fast a post reaches its author's followers' timelines.

Not a test. Starts embedded PostgreSQL and Valkey and one `livecore serve` node, fills the database directly (authors,
followers, videos with hashtags, engagement for trending: argon2 sign-ups for ten thousand accounts would take
minutes), signs up the viewers whose tokens it uses through the API, then:

1. Fan-out: `--followers` accounts follow one author and have built timelines (as after a read); the author uploads
   a video; it prints how long until every follower's timeline holds it (upload answered -> ready -> all written).
2. Following and For You: an open-loop client sends `--rate` requests/s for `--seconds` to each feed in turn
   (viewers and cursors rotate), after `--warmup-seconds` at the same rate from as many other viewers (printed
   apart: a node that has been serving has opened its PostgreSQL connections, and a new backend's first queries
   load its catalogue caches, tens of ms each on this loaded machine). It prints latency percentiles and errors as
   this client saw them (it is its own process; the node is another), each viewer's first page apart from the
   others, and how late the client itself sent (latency is timed from the actual send, so the client's own
   scheduling delay is reported, not counted); then the node's own view from its /metrics over the same window:
   the share of requests its handler answered within 10 ms, the histogram bucket of its p99, its garbage
   collector's full collections (count and total), and the CPU seconds of the node, PostgreSQL, Valkey, this client
   and the rest of the machine.

The viewers' Following timelines are built before the window, as an active viewer's are: a timeline lives
`timeline_ttl_s` (7 days) after its last read and fan-out keeps it current, so a deployment's steady 200 pages/s
read built timelines; a rebuild is what a follow, an unfollow, a week away or Valkey losing its data costs.
`--missing-timelines` measures that last case: every viewer's first page at once rebuilds its timeline (this
benchmark's 50 viewers all in its first 250 ms).

    .venv/bin/python benchmarks/feed_pages.py --followers 10000 --rate 200 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import redis.asyncio as redis
from benchnode import BenchNode, bench_node, call, sign_up
from prometheus_client.parser import text_string_to_metric_families

from feeds.timelines import BUILT, Timelines, fingerprint, fingerprint_key, timeline_key
from livecore.config import Settings
from loadtest.cpumeter import MACHINE

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from clips import make_mp4  # the tests' MP4 maker, found once its folder is on the path

HASHTAGS = [f"topic{i}" for i in range(40)]
REGIONS = ["US", "DE", "JP", "BR"]
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=10)


async def _accounts(conn: asyncpg.Connection, count: int, prefix: str) -> list[int]:
    rows = await conn.fetch(
        "INSERT INTO accounts (username, password_hash, display_name, birth_date, region)"
        " SELECT $1 || g, 'not-a-hash', $1 || g, '1990-01-01', ($2::text[])[1 + g % 4]"
        " FROM generate_series(1, $3) g RETURNING id", prefix, REGIONS, count)
    return [r["id"] for r in rows]


async def _fill(database_url: str, viewers: list[int], authors_count: int, videos_count: int,
                follows_per_viewer: int) -> list[int]:
    conn = await asyncpg.connect(database_url)
    try:
        authors = await _accounts(conn, authors_count, f"a{random.randrange(10**6)}_")
        rng = random.Random(1)
        await conn.executemany(
            "INSERT INTO videos (author_id, caption, hashtags, state, duration_ms, width, height, ready_at)"
            " VALUES ($1, 'a benchmark video', $2, 'ready', 15000, 720, 1280, now())",
            [(rng.choice(authors), rng.sample(HASHTAGS, 2)) for _ in range(videos_count)])
        await conn.executemany("INSERT INTO follows (follower_id, followee_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                               [(v, a) for v in viewers for a in rng.sample(authors, follows_per_viewer)])
        video_ids = [r["id"] for r in await conn.fetch("SELECT id FROM videos")]
        await conn.executemany(
            "INSERT INTO engagements (user_id, event_id, video_id, kind, watch_ms, watch_ratio, at)"
            " VALUES ($1, $2, $3, 'watch', 15000, 1.0, now())",
            [(rng.choice(viewers), f"seed{i}", rng.choice(video_ids)) for i in range(videos_count)])
        return authors
    finally:
        await conn.close()


async def _fan_out(http: aiohttp.ClientSession, url: str, database_url: str, redis_url: str, followers: int) -> None:
    author = await sign_up(http, url)
    conn = await asyncpg.connect(database_url)
    client = redis.from_url(redis_url)
    try:
        ids = await _accounts(conn, followers, f"f{random.randrange(10**6)}_")
        await conn.executemany("INSERT INTO follows (follower_id, followee_id) VALUES ($1, $2)",
                               [(f, author["id"]) for f in ids])
        async with client.pipeline(transaction=False) as pipe:  # timelines as a read leaves them
            for follower in ids:
                pipe.zadd(timeline_key(follower), {str(BUILT): BUILT})
                pipe.set(fingerprint_key(follower), fingerprint([author["id"]]))
            await pipe.execute()
        form = aiohttp.FormData()
        form.add_field("file", make_mp4(seconds=2), filename="clip.mp4", content_type="video/mp4")
        started = time.perf_counter()
        async with http.post(f"{url}/api/videos", data=form,
                             headers={"Authorization": f"Bearer {author['token']}"}) as response:
            video_id = (await response.json())["id"]
        while True:  # polled over HTTP as a client would; another process does the work
            if (await call(http, "GET", f"{url}/api/videos/{video_id}"))[1]["state"] != "processing":
                break
            await asyncio.sleep(0.01)
        ready = time.perf_counter()
        while True:
            async with client.pipeline(transaction=False) as pipe:
                for follower in ids:
                    pipe.zscore(timeline_key(follower), str(video_id))
                missing = sum(score is None for score in await pipe.execute())
            if not missing:
                break
            await asyncio.sleep(0.02)
        done = time.perf_counter()
        print(f"fan-out: {followers} followers; upload answered to ready {ready - started:.2f} s, ready to every "
              f"timeline written {done - ready:.2f} s, upload to all {done - started:.2f} s")
    finally:
        await client.aclose()
        await conn.close()


@dataclass
class Answer:
    due_s: float  # when the open-loop schedule said to send it, from the start of the window
    late_s: float  # how late this client sent it (its own scheduling delay, not counted in the latency)
    latency_s: float  # from sending to the whole answer read
    first_page: bool  # the viewer's first request of the window (a missing timeline is rebuilt there)


async def _build_timelines(node: BenchNode, viewer_ids: list[int]) -> None:
    """Build the viewers' timelines with the node's own rebuild, as their earlier reads would have (a timeline is
    kept `timeline_ttl_s` after its last read and new videos are written into it)."""
    settings = Settings()
    pool = await asyncpg.create_pool(node.database_url, min_size=1, max_size=2)
    client = redis.from_url(node.redis_url)
    try:
        timelines = Timelines(client, pool, settings.timeline_entries_max, settings.timeline_ttl_s,
                              settings.fanout_batch_max)
        follows = await pool.fetch("SELECT follower_id, array_agg(followee_id) AS authors FROM follows"
                                   " WHERE follower_id = ANY($1) GROUP BY follower_id", viewer_ids)
        for row in follows:
            await timelines.rebuild(row["follower_id"], row["authors"])
    finally:
        await client.aclose()
        await pool.close()


async def _feed_load(http: aiohttp.ClientSession, node: BenchNode, feed: str, tokens: list[str], rate: int,
                     seconds: int, label: str) -> None:
    answers: list[Answer] = []
    errors: list[int] = []
    cursors: dict[str, str | None] = {}

    async def one(token: str, due: float) -> None:
        query = {"limit": "10"}
        first_page = token not in cursors
        cursors.setdefault(token, None)
        if cursors[token]:
            query["cursor"] = cursors[token]  # type: ignore[assignment]
        started = time.perf_counter()
        try:
            async with http.get(f"{node.url}/api/feed/{feed}", params=query, timeout=REQUEST_TIMEOUT,
                                headers={"Authorization": f"Bearer {token}"}) as response:
                body: Any = await response.json(content_type=None)
                answers.append(Answer(due - begin, started - due, time.perf_counter() - started, first_page))
                if response.status != 200:
                    errors.append(response.status)
                else:
                    cursors[token] = body["next_cursor"]
        except (aiohttp.ClientError, TimeoutError):
            errors.append(0)  # no answer in time: the node is past what it can serve at this rate

    before, cpu_before = await _server_figures(http, node.url, feed), node.meter.sample()
    tasks = []
    begin = time.perf_counter()
    for n in range(rate * seconds):
        await asyncio.sleep(max(0.0, begin + n / rate - time.perf_counter()))  # open loop: on schedule, not on answers
        tasks.append(asyncio.create_task(one(tokens[n % len(tokens)], begin + n / rate)))
    await asyncio.gather(*tasks)
    after, cpu_after = await _server_figures(http, node.url, feed), node.meter.sample()
    if not answers:
        print(f"{label}: no answers at {rate}/s; errors {len(errors)}")
        return
    print(f"{label}: {len(answers)} answers to {rate * seconds} requests at {rate}/s: "
          f"{_percentiles([a.latency_s for a in answers])}; errors {len(errors)} {sorted(set(errors))} "
          "(0: no answer in 10 s)")
    first = [a.latency_s for a in answers if a.first_page]
    print(f"  each viewer's first page ({len(first)}): {_percentiles(first)}; the others: "
          f"{_percentiles([a.latency_s for a in answers if not a.first_page])}")
    print(f"  this client sent late by p99 {_pct([a.late_s for a in answers], 0.99):.1f} ms, max "
          f"{max(a.late_s for a in answers) * 1000:.1f} ms (not in the latencies above); the slowest answers were "
          f"due at {', '.join(f'{a.due_s:.2f}' for a in sorted(answers, key=lambda a: -a.latency_s)[:5])} s")
    answered, within = (after[k] - before[k] for k in ("answered", "within_10ms"))
    collections, collected_s = (after[k] - before[k] for k in ("gc_full", "gc_full_s"))
    print(f"{label}, as the node measured it: {within / max(answered, 1):.1%} of {answered:.0f} within 10 ms, p99 "
          f"{_bucket_p99(before['buckets'], after['buckets'])}; full garbage collections {collections:.0f}, "
          f"{collected_s * 1000:.0f} ms in all")
    used = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
    used["others"] = used.pop(MACHINE) - sum(used.values())
    print(f"  CPU seconds in the window: {', '.join(f'{name} {cpu_s:.1f}' for name, cpu_s in used.items())} "
          "(others: the rest of this machine)")


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else float("nan")


def _percentiles(values: list[float]) -> str:
    return (f"p50 {_pct(values, 0.5):.1f} ms, p90 {_pct(values, 0.9):.1f} ms, p99 {_pct(values, 0.99):.1f} ms, "
            f"max {max(values, default=float('nan')) * 1000:.1f} ms")


def _bucket_p99(before: dict[float, float], after: dict[float, float]) -> str:
    """The node's p99 as its latency histogram can tell it: the bucket it falls in."""
    counts = sorted((bound, after[bound] - before.get(bound, 0.0)) for bound in after)
    total = counts[-1][1] if counts else 0.0
    lower = 0.0
    for bound, count in counts:
        if count >= 0.99 * total:
            return f"{lower * 1000:g}-{bound * 1000:g} ms" if bound != float("inf") else f"over {lower * 1000:g} ms"
        lower = bound
    return "none"


async def _server_figures(http: aiohttp.ClientSession, url: str, feed: str) -> dict[str, Any]:
    """The node's count of `feed` requests answered, those within 10 ms, its latency buckets, and its full
    collections so far."""
    async with http.get(f"{url}/metrics") as response:
        text = await response.text()
    figures: dict[str, Any] = dict.fromkeys(("answered", "within_10ms", "gc_full", "gc_full_s"), 0.0)
    figures["buckets"] = {}
    route = f"/api/feed/{feed}"
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "livecore_http_request_seconds_bucket" and labels.get("route") == route:
                figures["buckets"][float(labels["le"])] = sample.value
                if labels["le"] == "+Inf":
                    figures["answered"] = sample.value
                elif float(labels["le"]) == 0.01:
                    figures["within_10ms"] = sample.value
            elif sample.name.startswith("livecore_gc_pause_seconds") and labels.get("generation") == "2":
                if sample.name.endswith("_count"):
                    figures["gc_full"] = sample.value
                elif sample.name.endswith("_sum"):
                    figures["gc_full_s"] = sample.value
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--followers", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=200, help="feed requests per second")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--authors", type=int, default=500)
    parser.add_argument("--videos", type=int, default=20_000)
    parser.add_argument("--feeds", default="following,for-you", help="which feeds to load, in order")
    parser.add_argument("--workers", type=int, default=1,
                        help="node processes (the node's default is one per core; 1 measures one process alone)")
    parser.add_argument("--warmup-seconds", type=int, default=3,
                        help="load each feed this long first, at the same rate, from other viewers (printed apart)")
    parser.add_argument("--missing-timelines", action="store_true",
                        help="leave the viewers' Following timelines unbuilt, as after Valkey lost its data: every "
                             "viewer's first page rebuilds its timeline (by default they are built, as an active "
                             "viewer's are)")
    args = parser.parse_args()
    with bench_node(fanout_followers_max=str(args.followers + 1), workers=str(args.workers)) as node:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            await node.wait_ready(http)
            await _fan_out(http, node.url, node.database_url, node.redis_url, args.followers)
            viewers = [await sign_up(http, node.url) for _ in range(2 * args.viewers)]  # half of them warm up
            await _fill(node.database_url, [v["id"] for v in viewers], args.authors, args.videos, 20)
            if not args.missing_timelines:
                await _build_timelines(node, [v["id"] for v in viewers])
            await asyncio.sleep(5)  # the node's catalogue and trending refresh (foryou_refresh_ms) see the videos
            tokens = [v["token"] for v in viewers]
            for feed in args.feeds.split(","):
                if args.warmup_seconds:
                    await _feed_load(http, node, feed, tokens[args.viewers:], args.rate, args.warmup_seconds,
                                     f"{feed} warm-up")
                await _feed_load(http, node, feed, tokens[:args.viewers], args.rate, args.seconds, feed)


if __name__ == "__main__":
    asyncio.run(main())
