"""Ad decisions at a fixed arrival rate against a real PostgreSQL: the node's own inventory refresh and event
path running beside them. Not a test.

What benchmarks/ad_decisions.py leaves out: there the refresh is fed rows made in Python; here an embedded
PostgreSQL (and Valkey) is started, the project's migrations applied, and `--campaigns` campaigns are made as the
product makes them (an advertiser's account, its videos made ready as the feeds pipeline does, its balance funded
and each campaign created through ads/campaigns.py, which reserves the lifetime budget on the ledger), with the
ad groups, targeting, bids and budgets drawn as ad_decisions.py draws them. The decisions are the same as there,
on the `Ads` object a node runs (ads/service.py: its decider, frequency caps and impression signer).

Three phases of `--seconds` each, with the same arrival rate and viewers, one after the other in one process:
- baseline: decisions only, on the inventory the first (full) refresh read; nothing else runs.
- refresh: as on a node, `Ads.refresh` every `ads_refresh_ms` and `Ads.post_spend` every `ads_spend_post_ms`, with
  no events: what the refresh reads is the share of campaigns read again in turn.
- live: the same (the refresh now reading what the events changed since the last one: migration 0005's stamps),
  and every ad served (`--reported-percent` of them) comes back as the viewer's feed page reports it
  (webui/static/js/adevents.js): its impression sent in a batch `PAGE_FLUSH_MS` after the first event the page
  queued, a click (`--click-percent` of impressions, a few seconds later) sent at once; each batch's tokens
  verified and recorded by `Ads.record_events` as POST /api/ads/events does (ads/recorder.py: the batches that
  arrive while one write is under way stored together in the next, one transaction: events, charges, hourly
  roll-ups, `ad_group_counts`).
Reported per phase: decision latency from when it was due and on its own, the share within 10 ms, the loop's
stalls and the collector's pauses, this process's CPU per decision, PostgreSQL's CPU-seconds (its processes'
times in /proc); each refresh's wall time, CPU on the loop and rows read, the spend postings', the event batches'
rate and latency. Then each phase against the baseline as ratios (the machine is shared: the ratio of two phases
a few seconds apart says more than either figure). At the end every event still queued is
sent, all spend posted, and the ads' money invariants (ads/invariants.py) checked, with every impression reported in
the live phase counted once and `ad_group_counts` equal to the sum of the hourly roll-ups; the exit status is 1 if
any of that fails.

    .venv/bin/python benchmarks/ad_decisions_db.py --rate 500 --seconds 20 --campaigns 1000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from ad_decisions import (
    CAMPAIGN_DAYS,
    GROUPS_PER_CAMPAIGN,
    LoopTime,
    LoopWatch,
    audience,
    draw_budget,
    draw_group,
    open_loop,
    pct,
    print_latency,
    print_loop,
)
from prometheus_client import CollectorRegistry

from ads import Ads, billing, campaigns, events, invariants
from ads.campaigns import NewAdGroup, NewCampaign, NewCreative
from ads.frequency import choose_within_caps
from ads.inventory import InventoryRows
from ads.pacing import DAY_MS
from ads.service import CAP_RETRIES_MAX
from ads.targeting import Targeting
from feeds import videos
from livecore import db, heap, redisclient
from livecore.accounts.accounts import AccountCache
from livecore.accounts.tokens import Tokens, hash_password, shared_secret
from livecore.clock import Clock
from livecore.config import Settings
from livecore.embedded import EmbeddedPostgres, EmbeddedValkey
from livecore.node import Node
from loadtest.cpumeter import MACHINE, CpuMeter, ProcessGroup

PAGE_FLUSH_MS = 1000  # webui/static/js/adevents.js FLUSH_MS: a page sends what it queued a second after the first
CLICK_DELAY_S = (1.0, 5.0)  # a click comes this long after its impression (uniform)
SETUP_CONCURRENCY = 4  # campaigns created at once while setting up
CPU_SAMPLE_S = 0.5  # how often the processes' CPU times are read (a backend or autovacuum worker may be short-lived)
STATS_SETTLE_S = 0.5  # for the ended backends' table statistics to arrive
WRITTEN_TABLES = ["ad_campaigns", "ad_events", "ad_group_counts", "ad_stats_hourly"]
VIDEO_SHAPE = (15_000, 720, 1280)  # duration ms, width, height of the creatives' videos


async def make_campaigns(ads: Ads, pool: asyncpg.Pool, count: int, rng: random.Random, now_ms: int) -> None:
    """`count` running campaigns, each of its own advertiser, as the product makes them: the advertiser's account
    (one password hash for all: hashing is slow on purpose), a video per ad group made ready, the balance funded
    with the lifetime budget, the campaign created with its budget reserved."""
    password_hash = await hash_password(secrets.token_urlsafe())
    rows = await pool.fetch(
        "INSERT INTO accounts (username, password_hash, display_name, birth_date, region, language, interests, roles)"
        " SELECT 'brand' || n, $1, 'brand ' || n, '1980-01-01', 'US', 'en', '{}', '{advertiser,creator}'"
        " FROM generate_series(1, $2) n RETURNING id, username", password_hash, count)
    advertisers = sorted((int(r["username"].removeprefix("brand")), r["id"]) for r in rows)
    plans = [([draw_group(rng) for _ in range(GROUPS_PER_CAMPAIGN)], draw_budget(rng)) for _ in advertisers]
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def make(n: int, advertiser_id: int, groups: list[dict[str, Any]], budget: dict[str, Any]) -> None:
        async with gate:
            new_groups = []
            for g in groups:
                video_id = await videos.create_video(pool, advertiser_id, "an ad", [], None, None, False)
                assert video_id is not None
                await videos.mark_ready(pool, video_id, *VIDEO_SHAPE)
                targeting = Targeting(tuple(g["age_bands"]), tuple(g["regions"]), tuple(g["languages"]),
                                      tuple(g["interests"]))
                new_groups.append(NewAdGroup("group", g["bid_kind"], g["bid_cents"], targeting,
                                             g["frequency_per_day_max"], [NewCreative(video_id, "headline", None)]))
            lifetime = budget["budget_lifetime_cents"]
            assert await billing.fund(pool, ads.accounts, advertiser_id, lifetime, f"bench-{n}", now_ms,
                                      advertiser_id)
            await campaigns.create_campaign(pool, ads.accounts, advertiser_id, NewCampaign(
                f"campaign {n}", budget["budget_daily_cents"], lifetime, now_ms - DAY_MS,
                now_ms + CAMPAIGN_DAYS * DAY_MS, budget["pacing"], new_groups), now_ms)

    await asyncio.gather(*(make(n, a, g, b) for (n, a), (g, b) in zip(advertisers, plans, strict=True)))


def rows_read(rows: InventoryRows) -> int:
    return (len(rows.campaigns) + len(rows.groups) + len(rows.creatives) + len(rows.videos) + len(rows.spend)
            + len(rows.counts) + len(rows.deleted))


@dataclass
class Work:
    """Timed runs of one kind of background work: (wall s, CPU s on the loop) each."""

    runs: list[tuple[float, float]] = field(default_factory=list)

    async def every(self, interval_ms: int, work: Callable[[], Coroutine[Any, Any, object]]) -> None:
        """As the node's Ads.start schedules it (ads/service.py `_every`), timed; a failure ends the run."""
        while True:
            await asyncio.sleep(interval_ms / 1000)
            meter = LoopTime()
            started = time.perf_counter()
            await meter(work())
            self.runs.append((time.perf_counter() - started, meter.cpu_s))


class ReadMeter:
    """Stands in the inventory's `read` (the refresh's queries, in one snapshot) to count what each read returned
    and time it; the refresh itself is the node's own."""

    def __init__(self, ads: Ads) -> None:
        self._read = ads.inventory.read
        ads.inventory.read = self  # type: ignore[method-assign]  # measured, not changed
        self.reads: list[tuple[bool, int, float]] = []  # (full, rows, wall s)

    async def __call__(self, now_ms: int, full: bool) -> InventoryRows:
        started = time.perf_counter()
        rows = await self._read(now_ms, full)
        self.reads.append((rows.full, rows_read(rows), time.perf_counter() - started))
        return rows


class Pages:
    """The viewers' feed pages sending the events of the ads they were shown, as adevents.js does: an impression is
    queued and the page's queue sent PAGE_FLUSH_MS after the first event in it; a click is sent at once. Each batch
    is verified and recorded as POST /api/ads/events does."""

    def __init__(self, ads: Ads, clock: Clock, reported_rate: float, click_rate: float, rng: random.Random) -> None:
        self.ads, self.clock, self.rng = ads, clock, rng
        self.reported_rate, self.click_rate = reported_rate, click_rate
        self.queued: dict[int, list[tuple[str, str, events.Kind]]] = {}  # user -> (event id, token, kind)
        self.sending: set[asyncio.Task[None]] = set()
        self.timers: dict[int, asyncio.TimerHandle] = {}  # user -> the page's flush
        # event id -> the click to come: (its timer, user, event)
        self.clicks: dict[str, tuple[asyncio.TimerHandle, int, tuple[str, str, events.Kind]]] = {}
        self.batches: list[float] = []  # latency s of each batch
        self.in_flight_max = 0
        self.sent = self.accepted = self.impressions = 0
        self.open = True

    def shown(self, user_id: int, impression_id: str, token: str) -> None:
        if not self.open or self.rng.random() >= self.reported_rate:
            return
        self.impressions += 1
        self.record(user_id, (f"{impression_id}:impression", token, "impression"))
        if self.rng.random() < self.click_rate:
            event: tuple[str, str, events.Kind] = (f"{impression_id}:click", token, "click")
            handle = asyncio.get_running_loop().call_later(self.rng.uniform(*CLICK_DELAY_S), self.click, user_id,
                                                           event)
            self.clicks[event[0]] = (handle, user_id, event)

    def click(self, user_id: int, event: tuple[str, str, events.Kind]) -> None:
        self.clicks.pop(event[0], None)
        self.record(user_id, event)

    def record(self, user_id: int, event: tuple[str, str, events.Kind]) -> None:
        self.queued.setdefault(user_id, []).append(event)
        if event[2] == "click":
            self.flush(user_id)
        elif user_id not in self.timers:
            self.timers[user_id] = asyncio.get_running_loop().call_later(PAGE_FLUSH_MS / 1000, self.flush, user_id)

    def flush(self, user_id: int) -> None:
        timer = self.timers.pop(user_id, None)
        if timer is not None:
            timer.cancel()
        batch = self.queued.pop(user_id, [])
        if batch:
            task = asyncio.create_task(self.send(user_id, batch))
            self.sending.add(task)
            self.in_flight_max = max(self.in_flight_max, len(self.sending))
            task.add_done_callback(self.sending.discard)

    async def send(self, user_id: int, batch: list[tuple[str, str, events.Kind]]) -> None:
        started = time.perf_counter()
        now_ms = self.clock.now_ms()
        recorded = await self.ads.record_events(user_id, [
            events.Event(event_id, self.ads.signer.verify(token, now_ms), kind, now_ms)
            for event_id, token, kind in batch])
        self.batches.append(time.perf_counter() - started)
        self.sent += len(batch)
        self.accepted += recorded.accepted

    async def close(self) -> None:
        """Send every queued event now (a page's pagehide) and wait for all batches; none is lost."""
        self.open = False
        for handle, user_id, event in list(self.clicks.values()):  # the clicks still to come, now
            handle.cancel()
            self.click(user_id, event)
        for user_id in list(self.queued):
            self.flush(user_id)
        await asyncio.gather(*self.sending)


class CpuSampler:
    """PostgreSQL's, Valkey's and this process's CPU seconds, sampled in a thread of their own so the walk of /proc
    stays off the event loop."""

    def __init__(self, pg: EmbeddedPostgres, valkey: EmbeddedValkey) -> None:
        postmaster = int((pg.pgdata / "postmaster.pid").read_text().split()[0])
        valkey_pid = valkey.process.pid if valkey.process else None
        self.meter = CpuMeter([
            ProcessGroup("postgres", lambda: [postmaster], with_children=True),
            ProcessGroup("valkey", lambda: [valkey_pid] if valkey_pid else [], with_children=False),
            ProcessGroup("benchmark", lambda: [os.getpid()], with_children=False),
        ])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(CPU_SAMPLE_S):
            self.meter.sample()

    def __enter__(self) -> CpuSampler:
        self.meter.sample()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def between(self, start: float, end: float) -> dict[str, float]:
        self.meter.sample()
        return self.meter.between(start, end)


@dataclass
class Phase:
    name: str
    background: bool  # the node's refresh and spend posting run
    events: bool  # the served ads' events come back
    from_due: list[float] = field(default_factory=list)
    own: list[float] = field(default_factory=list)
    served: int = 0
    served_groups: set[int] = field(default_factory=set)
    served_campaigns: set[int] = field(default_factory=set)
    elapsed_s: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # CPU s by process group over the phase
    load: float = 0.0
    watch: LoopWatch = field(default_factory=LoopWatch)
    refreshes: Work = field(default_factory=Work)
    spend_posts: Work = field(default_factory=Work)
    reads: list[tuple[bool, int, float]] = field(default_factory=list)
    batches: list[float] = field(default_factory=list)
    events_sent: int = 0
    in_flight_max: int = 0  # event batches sent and not yet answered, at most
    writes: int = 0  # transactions that stored them


def _event_writes(ads: Ads) -> int:
    return int(ads.node.registry.get_sample_value("livecore_ad_event_writes_total") or 0)


async def run_phase(phase: Phase, args: argparse.Namespace, ads: Ads, sampler: CpuSampler, reads: ReadMeter,
                    pages: Pages, rng: random.Random, viewers: list[tuple[int, Any]]) -> None:
    """Decisions at `args.rate` for `args.seconds`, with what the phase runs beside them."""
    clock, s = ads.node.clock, ads.node.settings

    async def decide(due: float) -> None:
        started = time.perf_counter()
        user_id, who = rng.choice(viewers)
        now_ms = clock.now_ms()
        choice = await choose_within_caps(ads.decider, ads.caps, user_id, who, now_ms, CAP_RETRIES_MAX)
        if choice is not None:
            impression_id, token = ads.signer.issue(choice.campaign.id, choice.group.id, choice.creative.id, user_id,
                                                    choice.group.bid_kind, choice.outcome.price_millicents, now_ms)
            phase.served += 1
            phase.served_groups.add(choice.group.id)
            phase.served_campaigns.add(choice.campaign.id)
            if phase.events:
                pages.shown(user_id, impression_id, token)
        ended = time.perf_counter()
        phase.from_due.append(ended - due)
        phase.own.append(ended - started)

    background = [asyncio.create_task(phase.watch.probe())]
    if phase.background:
        background += [asyncio.create_task(phase.refreshes.every(s.ads_refresh_ms, ads.refresh)),
                       asyncio.create_task(phase.spend_posts.every(s.ads_spend_post_ms, ads.post_spend))]
    reads_before, batches_before, sent_before = len(reads.reads), len(pages.batches), pages.sent
    writes_before = _event_writes(ads)
    gc.callbacks.append(phase.watch.on_gc)
    cpu_start, started = time.process_time(), time.monotonic()
    try:
        phase.elapsed_s = await open_loop(args.rate, args.seconds, decide)
    finally:
        gc.callbacks.remove(phase.watch.on_gc)
        for task in background:
            task.cancel()
        failed = [t.exception() for t in background if t.done() and not t.cancelled()]
        await asyncio.gather(*background, return_exceptions=True)
    phase.cpu = sampler.between(started, time.monotonic())
    phase.cpu["benchmark loop"] = time.process_time() - cpu_start
    phase.load = os.getloadavg()[0]
    phase.reads = reads.reads[reads_before:]
    phase.batches, phase.events_sent = pages.batches[batches_before:], pages.sent - sent_before
    phase.in_flight_max, pages.in_flight_max = pages.in_flight_max, 0
    phase.writes = _event_writes(ads) - writes_before
    if failed:
        raise RuntimeError(f"background work failed in the {phase.name} phase: {failed!r}")


def report_phase(phase: Phase, args: argparse.Namespace) -> None:
    for values in (phase.from_due, phase.own, phase.watch.stalls):
        values.sort()
    n = len(phase.from_due)
    print(f"\n== {phase.name}: {n} decisions in {phase.elapsed_s:.1f} s ({n / phase.elapsed_s:.0f}/s, asked"
          f" {args.rate}/s), {phase.served} served (of {len(phase.served_campaigns)} campaigns,"
          f" {len(phase.served_groups)} ad groups); load average {phase.load:.1f} on {os.cpu_count()} cores")
    print_latency(phase.from_due, phase.own)
    for full, name in ((False, "what changed"), (True, "full")):
        runs = [(w, c) for (w, c), (f, _, _) in zip(phase.refreshes.runs, phase.reads, strict=False) if f == full]
        reads = [(rows, wall) for f, rows, wall in phase.reads if f == full]
        if runs:
            wall, cpu = sorted(w for w, _ in runs), sorted(c for _, c in runs)
            rows, read_wall = sorted(r for r, _ in reads), sorted(w for _, w in reads)
            print(f"refreshes reading {name}: {len(runs)}, wall median {pct(wall, 50):.1f} ms, max"
                  f" {wall[-1] * 1000:.1f} ms; CPU on the loop median {pct(cpu, 50):.2f} ms, max {cpu[-1] * 1000:.2f}"
                  f" ms; rows read median {rows[len(rows) // 2]}, max {rows[-1]}; the read's wall (queries in one"
                  f" snapshot) median {pct(read_wall, 50):.1f} ms, max {read_wall[-1] * 1000:.1f} ms")
    if phase.spend_posts.runs:
        wall = sorted(w for w, _ in phase.spend_posts.runs)
        cpu = sorted(c for _, c in phase.spend_posts.runs)
        print(f"spend postings: {len(wall)}, wall median {pct(wall, 50):.1f} ms, max {wall[-1] * 1000:.1f} ms; CPU on"
              f" the loop median {pct(cpu, 50):.2f} ms, max {cpu[-1] * 1000:.2f} ms")
    if phase.batches:
        batches = sorted(phase.batches)
        print(f"event batches: {len(batches)} ({len(batches) / phase.elapsed_s:.0f}/s) of {phase.events_sent}"
              f" events, latency p50 {pct(batches, 50):.1f} ms, p99 {pct(batches, 99):.1f} ms, max"
              f" {batches[-1] * 1000:.1f} ms; at most {phase.in_flight_max} sent and not yet answered; stored in"
              f" {phase.writes} transactions ({len(batches) / max(1, phase.writes):.1f} batches each)")
    print_loop(phase.watch)
    cpu = phase.cpu
    print(f"CPU seconds: PostgreSQL {cpu.get('postgres', 0):.2f} ({cpu.get('postgres', 0) / phase.elapsed_s:.0%} of a"
          f" core), Valkey {cpu.get('valkey', 0):.2f}, this process {cpu['benchmark loop']:.2f}"
          f" ({cpu['benchmark loop'] / n * 1000:.3f} ms per decision, background work included), the whole machine"
          f" {cpu.get(MACHINE, 0):.2f} of {phase.elapsed_s * (os.cpu_count() or 1):.1f}")
    if phase.batches:
        print(f"  PostgreSQL CPU per event batch (refreshes and spend postings included):"
              f" {cpu.get('postgres', 0) / len(phase.batches) * 1000:.2f} ms")


def report_ratios(baseline: Phase, live: Phase) -> None:
    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}x" if b else "n/a"

    print(f"\n== {live.name.split(':')[0]} against baseline (same rate, viewers and inventory, seconds apart)")
    print("latency from due: " + ", ".join(
        f"p{p} {ratio(pct(live.from_due, p), pct(baseline.from_due, p))}" for p in (50, 90, 99, 99.9)))
    print("latency own time: " + ", ".join(
        f"p{p} {ratio(pct(live.own, p), pct(baseline.own, p))}" for p in (50, 90, 99, 99.9)))
    per_decision = ratio(live.cpu["benchmark loop"] / len(live.own), baseline.cpu["benchmark loop"] / len(baseline.own))
    print(f"this process's CPU per decision: {per_decision};"
          f" PostgreSQL CPU {live.cpu.get('postgres', 0):.2f} s against {baseline.cpu.get('postgres', 0):.2f} s;"
          f" loop stall p99 {ratio(pct(live.watch.stalls, 99), pct(baseline.watch.stalls, 99))}")


async def check_books(ads: Ads, pool: asyncpg.Pool, pages: Pages) -> list[str]:
    """What must hold after the run: every impression reported in the live phase counted once, each group's counts
    the sum of its roll-ups, all spend posted and the money invariants."""
    while await ads.post_spend():
        pass
    problems = list(await invariants.violations(pool))
    counted = await pool.fetchval("SELECT count(*) FROM ad_events WHERE kind = 'impression'")
    if counted != pages.impressions or pages.accepted != pages.sent:
        problems.append(f"impressions reported {pages.impressions}, counted {counted}; events sent {pages.sent},"
                        f" accepted {pages.accepted}")
    apart = await pool.fetchval(
        "SELECT count(*) FROM ad_group_counts c FULL JOIN (SELECT ad_group_id, sum(impressions) AS impressions,"
        " sum(clicks) AS clicks FROM ad_stats_hourly GROUP BY 1) s USING (ad_group_id)"
        " WHERE (c.impressions, c.clicks) IS DISTINCT FROM (s.impressions, s.clicks)")
    if apart:
        problems.append(f"{apart} ad groups whose counts are not the sum of their hourly roll-ups")
    unposted = await pool.fetchval("SELECT count(*) FROM ad_events WHERE millicents > 0 AND batch IS NULL")
    if unposted:
        problems.append(f"{unposted} charges left unposted")
    return problems


async def print_table_writes(url: str) -> None:
    """How the ads' tables were written over the whole run: updates that were HOT (no index touched: the new row
    version on the same page) and dead row versions left for vacuum. Read once the pool is closed: a backend sends
    its statistics when it ends."""
    await asyncio.sleep(STATS_SETTLE_S)
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_dead_tup, autovacuum_count"
                                " FROM pg_stat_user_tables WHERE relname = ANY($1) ORDER BY relname", WRITTEN_TABLES)
    finally:
        await conn.close()
    print("table writes over the run (setup included): " + "; ".join(
        f"{r['relname']} {r['n_tup_ins']} inserted, {r['n_tup_upd']} updated ({r['n_tup_hot_upd']} HOT),"
        f" {r['n_dead_tup']} dead, {r['autovacuum_count']} autovacuums" for r in rows))


async def run(args: argparse.Namespace, pg: EmbeddedPostgres, valkey: EmbeddedValkey) -> bool:
    settings = Settings(database_url=pg.url, redis_url=valkey.url, db_pool_size_max=args.pool,
                        ads_refresh_ms=args.refresh_ms,
                        ads_refresh_full_ms=args.refresh_full_ms, ads_spend_post_ms=args.spend_post_ms,
                        ads_campaigns_in_memory_max=max(args.campaigns + 1, Settings().ads_campaigns_in_memory_max))
    clock, rng = Clock(), random.Random(args.seed)
    pool = await db.create_pool(settings.database_url, settings.db_pool_size_max)
    client = redisclient.connect(settings.redis_url, settings.redis_connections_max, settings.redis_wait_s_max)
    try:
        await db.migrate(pool)
        tokens = Tokens(await shared_secret(pool), settings.token_ttl_s, clock)
        node = Node(settings, clock, pool, client, tokens, CollectorRegistry(),
                    AccountCache(pool, clock, settings.account_cache_ms, settings.account_cache_entries_max))
        ads = Ads(node)
        started = time.perf_counter()
        await make_campaigns(ads, pool, args.campaigns, rng, clock.now_ms())
        made_s = time.perf_counter() - started
        reads = ReadMeter(ads)
        meter = LoopTime()
        started = time.perf_counter()
        await meter(ads.refresh())  # as Ads.start does before its loops
        first = time.perf_counter() - started
        print(f"campaigns {args.campaigns} (ad groups {GROUPS_PER_CAMPAIGN * args.campaigns}) made in {made_s:.1f} s;"
              f" first (full) refresh {first * 1000:.0f} ms wall, {meter.cpu_s * 1000:.0f} ms CPU on the loop,"
              f" {reads.reads[-1][1]} rows; {len(ads.inventory.campaigns)} campaigns running in memory; viewers"
              f" {args.viewers}, refresh every {settings.ads_refresh_ms} ms (every campaign read whole in turn every"
              f" {settings.ads_refresh_full_ms} ms), spend posted every {settings.ads_spend_post_ms} ms,"
              f" {args.reported_percent} % of served ads reported by their page, clicks {args.click_percent} % of"
              f" impressions, on {args.loop}")
        viewers = [(user_id, audience(rng)) for user_id in range(1, args.viewers + 1)]
        pages = Pages(ads, clock, args.reported_percent / 100, args.click_percent / 100, random.Random(args.seed + 1))
        heap.freeze_startup_heap()  # as the node does once it serves (livecore/cli.py)
        phases = [Phase("baseline: decisions only (no refresh, no spend posting, no events)", False, False),
                  Phase("refresh: decisions + the node's refresh and spend posting (no events: only the campaigns"
                        " read again in turn)", True, False),
                  Phase("live: decisions + the node's refresh and spend posting + the served ads' events", True,
                        True)]
        with CpuSampler(pg, valkey) as sampler:
            for phase in phases:
                await run_phase(phase, args, ads, sampler, reads, pages, rng, viewers)
        for phase in phases:
            report_phase(phase, args)
        for phase in phases[1:]:
            report_ratios(phases[0], phase)
        await pages.close()
        problems = await check_books(ads, pool, pages)
        print(f"\nafter the run: {pages.impressions} impressions reported in the live phase, {pages.sent} events sent"
              f" in {len(pages.batches)} batches ({pages.accepted} accepted), all spend posted")
        print("invariants: " + ("all hold (money, counts, no event lost)" if not problems else "BROKEN"))
        for problem in problems:
            print(f"  {problem}")
    finally:
        await client.aclose()
        await pool.close()
    await print_table_writes(settings.database_url)
    return not problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=500, help="decisions per second")
    parser.add_argument("--seconds", type=float, default=20, help="of each phase")
    parser.add_argument("--campaigns", type=int, default=1000)
    parser.add_argument("--viewers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--refresh-ms", type=int, default=Settings().ads_refresh_ms,
                        help="as the node's ads_refresh_ms")
    parser.add_argument("--refresh-full-ms", type=int, default=Settings().ads_refresh_full_ms,
                        help="as the node's ads_refresh_full_ms")
    parser.add_argument("--spend-post-ms", type=int, default=Settings().ads_spend_post_ms,
                        help="as the node's ads_spend_post_ms")
    parser.add_argument("--pool", type=int, default=Settings().db_pool_size_max,
                        help="PostgreSQL connections, as the node's db_pool_size_max")
    parser.add_argument("--reported-percent", type=float, default=100.0,
                        help="served ads whose page reports their events (less: a lighter write path, to find where"
                             " it stops keeping up)")
    parser.add_argument("--click-percent", type=float, default=1.0, help="impressions whose viewer clicks")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="the event loop: uvloop as `livecore serve` runs, or asyncio's own")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="livecore-adbench-") as directory:
        pg, valkey = EmbeddedPostgres(Path(directory) / "postgres"), EmbeddedValkey(Path(directory) / "valkey")
        try:
            pg.start()
            valkey.start()
            if args.loop == "uvloop":
                import uvloop

                uvloop.install()
            held = asyncio.run(run(args, pg, valkey))
        finally:
            valkey.stop()
            pg.stop()
    sys.exit(0 if held else 1)


if __name__ == "__main__":
    main()
