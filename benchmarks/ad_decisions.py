"""Ad decisions per For You slot at a fixed arrival rate: latency percentiles and CPU per decision. Not a test.

Starts an embedded Valkey (the frequency caps live there) and holds an in-memory inventory of synthetic campaigns
built by the node's own code from synthetic rows (`Inventory.load`, what a refresh does after its queries):
`--campaigns` campaigns of three ad groups each, CPM and CPC bids, targeting drawn from age bands, regions, languages
and interests (a quarter untargeted), even, front-loaded and asap pacing. As on a node, the heap left by setting up is
frozen (livecore/heap.py) and the inventory is read again every `--refresh-ms` (fresh rows each time, as the database
driver returns them, with the served groups' impressions and the campaigns' spend moved on), then ranked.
Viewers (a tenth of them minors) are drawn from `--viewers`. Requests arrive open-loop at `--rate` per second for
`--seconds`: each decision is timed from when it was due to start, so a slow one delays the next in the figures
too, and also on its own (from when it started: what the node's `livecore_ad_decision_seconds` measures). A
decision is exactly what the feed's ads stage runs (ads/service.py): read the viewer's caps (one HGETALL),
targeting, pacing and the auction in memory, count the serve (HINCRBY + EXPIRE in one MULTI) and sign the
impression token. Also reported: the event loop's longest stalls, the garbage collector's pauses by generation and
the refreshes' time.

    .venv/bin/python benchmarks/ad_decisions.py --rate 500 --seconds 20 --campaigns 1000
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import datetime as dt
import gc
import os
import random
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator
from pathlib import Path
from typing import Any, TypeVar, cast

import redis.asyncio as redis

from ads.decisions import AuctionRule, Decider
from ads.frequency import FrequencyCaps, choose_within_caps
from ads.impressions import ImpressionSigner
from ads.inventory import Inventory, InventoryRows, Row
from ads.pacing import DAY_MS, Pacing, PacingRule
from ads.service import CAP_RETRIES_MAX
from ads.targeting import AGE_BANDS, MINOR_BAND, Audience
from feeds.videos import Video
from livecore import heap
from livecore.accounts.tokens import Tokens
from livecore.clock import Clock
from livecore.embedded import EmbeddedValkey

REGIONS = ("US", "DE", "FR", "GB", "JP", "BR", "IN", "ES")
LANGUAGES = ("en", "de", "fr", "ja", "pt", "es")
INTERESTS = tuple(f"topic{n}" for n in range(60))
PACINGS: tuple[Pacing, ...] = ("even", "front_loaded", "asap")
LOOP_PROBE_S = 0.001
T = TypeVar("T")
DRIVER_ROWS_PER_READ = 300
GROUPS_PER_CAMPAIGN = 3
CAMPAIGN_DAYS = 30  # a campaign runs from a day ago for this many days; its lifetime budget is this many days'


def draw_group(rng: random.Random) -> dict[str, Any]:
    """An ad group's bid, targeting (a quarter untargeted) and frequency cap, as its row holds them."""
    targeted = rng.random() >= 0.25
    kind = rng.choice(("cpm", "cpc"))
    return {"bid_kind": kind, "bid_cents": rng.randint(100, 2000) if kind == "cpm" else rng.randint(10, 200),
            "age_bands": rng.sample(AGE_BANDS, rng.randint(0, 3)) if targeted else [],
            "regions": rng.sample(REGIONS, rng.randint(0, 2)) if targeted else [],
            "languages": rng.sample(LANGUAGES, rng.randint(0, 1)) if targeted else [],
            "interests": rng.sample(INTERESTS, rng.randint(1, 4)) if targeted else [],
            "frequency_per_day_max": rng.randint(2, 10)}


def draw_budget(rng: random.Random) -> dict[str, Any]:
    """A campaign's budgets (a daily one, CAMPAIGN_DAYS of it in all) and pacing, as its row holds them."""
    budget = rng.randint(10_000, 1_000_000)
    return {"budget_daily_cents": budget, "budget_lifetime_cents": budget * CAMPAIGN_DAYS,
            "pacing": rng.choice(PACINGS)}


def synthetic_rows(campaigns: int, rng: random.Random, now_ms: int) -> InventoryRows:
    """Rows as a full read returns them, for `campaigns` campaigns of three groups with a creative each."""
    campaign_rows: list[dict[str, Any]] = []
    group_rows: list[dict[str, Any]] = []
    creative_rows: list[dict[str, Any]] = []
    counts: list[dict[str, Any]] = []
    videos: dict[int, Video] = {}
    group_id = 0
    for campaign_id in range(1, campaigns + 1):
        for _ in range(GROUPS_PER_CAMPAIGN):
            group_id += 1
            group_rows.append({"id": group_id, "campaign_id": campaign_id, **draw_group(rng)})
            counts.append({"ad_group_id": group_id, "impressions": rng.randint(0, 100_000),
                           "clicks": rng.randint(0, 1000)})
            creative_rows.append({"id": group_id, "ad_group_id": group_id, "video_id": group_id,
                                  "headline": "headline", "landing_url": None})
            videos[group_id] = Video(group_id, campaign_id, "an ad", [], None, None, False, "ready", None, None,
                                     15_000, 720, 1280, 0, 0, 0, dt.datetime.now(dt.UTC), f"brand{campaign_id}",
                                     f"brand {campaign_id}")
        campaign_rows.append({
            "id": campaign_id, "advertiser_id": campaign_id, "display_name": f"brand {campaign_id}",
            "state": "active", "starts_ms": now_ms - DAY_MS, "ends_ms": now_ms + CAMPAIGN_DAYS * DAY_MS,
            **draw_budget(rng), "charged_millicents": 0})
    spend = [{"campaign_id": c["id"], "charged_millicents": 0, "today": 0, "this_hour": 0} for c in campaign_rows]
    return InventoryRows(True, 0, campaign_rows, group_rows, creative_rows, videos, spend, counts)


class Database:
    """What PostgreSQL would hold: the campaigns' rows with the served groups' impressions and the campaigns' spend
    moved on, and what changed since the last read."""

    def __init__(self, rows: InventoryRows, rng: random.Random) -> None:
        self.rows = rows
        self.rng = rng
        self.counts = {c["ad_group_id"]: c for c in rows.counts}
        self.spend = {s["campaign_id"]: s for s in rows.spend}
        self.groups_of: dict[int, list[Row]] = {}
        for g in rows.groups:
            self.groups_of.setdefault(g["campaign_id"], []).append(g)
        self.moved: set[int] = set()  # campaigns whose roll-ups changed since the last read
        self.counted: set[int] = set()  # ad groups whose counts changed since the last read
        self.redefined: set[int] = set()  # campaigns whose definition changed since the last read

    def serve(self, campaign_id: int, group_id: int, millicents: int) -> None:
        """An impression's events recorded: its roll-up row and its charge."""
        counts, spend = self.counts[group_id], self.spend[campaign_id]
        counts["impressions"] += 1
        self.counted.add(group_id)
        spend["charged_millicents"] += millicents
        spend["today"] += millicents
        spend["this_hour"] += millicents
        self.moved.add(campaign_id)

    def redefine(self, changes: int) -> None:
        """An advertiser edits `changes` campaigns: an ad group's bid."""
        for _ in range(changes):
            group = self.rng.choice(self.rows.groups)
            group["bid_cents"] = max(10, group["bid_cents"] + self.rng.choice((-1, 1)))
            self.redefined.add(group["campaign_id"])

    async def read(self, full: bool, watermark: int, reread: list[int], reread_to: int) -> InventoryRows:
        """New row objects (the driver makes new ones every time) of what a refresh reads: everything, or the
        campaigns whose definition changed and the figures that moved; made `DRIVER_ROWS_PER_READ` at a time (the
        driver decodes a result as its bytes arrive). `reread`: campaigns asked for whole whether or not they
        changed."""
        rows = self.rows
        if full:
            campaigns = rows.campaigns
            figured = [c["id"] for c in campaigns]
            counted = [g["id"] for g in rows.groups]
        else:
            whole = self.redefined.union(reread)
            campaigns = [c for c in rows.campaigns if c["id"] in whole]
            figured = sorted(self.moved | whole)
            counted = sorted(self.counted | {g["id"] for c in whole for g in self.groups_of[c]})
        self.moved, self.redefined, self.counted = set(), set(), set()
        out: dict[str, list[dict[str, Any]]] = {"campaigns": [], "groups": [], "creatives": [], "spend": [],
                                                "counts": []}
        videos: dict[int, Video] = {}
        made = 0
        for c in campaigns:
            out["campaigns"].append(dict(c, charged_millicents=self.spend[c["id"]]["charged_millicents"]))
            for g in self.groups_of[c["id"]]:
                out["groups"].append(dict(g))
                out["creatives"].append(dict(rows.creatives[g["id"] - 1]))
                videos[g["id"]] = copy.copy(rows.videos[g["id"]])
                made += 3
                if made >= DRIVER_ROWS_PER_READ:
                    made = 0
                    await asyncio.sleep(0)
        for n, campaign_id in enumerate(figured, 1):
            out["spend"].append(dict(self.spend[campaign_id]))
            if n % DRIVER_ROWS_PER_READ == 0:
                await asyncio.sleep(0)
        for n, group_id in enumerate(counted, 1):
            out["counts"].append(dict(self.counts[group_id]))
            if n % DRIVER_ROWS_PER_READ == 0:
                await asyncio.sleep(0)
        return InventoryRows(full, watermark + 1, out["campaigns"], out["groups"], out["creatives"], videos,
                             out["spend"], out["counts"], (), reread, reread_to)


class LoopTime:
    """The CPU time a coroutine spends on the event loop, over all its steps (not the time it waits)."""

    def __init__(self) -> None:
        self.cpu_s = 0.0

    def __call__(self, coroutine: Coroutine[Any, Any, T]) -> Awaitable[T]:
        return _Timed(coroutine, self)


class _Timed(Awaitable[T]):
    def __init__(self, coroutine: Coroutine[Any, Any, T], meter: LoopTime) -> None:
        self.coroutine, self.meter = coroutine, meter

    def __await__(self) -> Generator[Any, Any, T]:
        value: Any = None
        thrown: BaseException | None = None
        while True:
            started = time.thread_time()
            try:
                waiting = self.coroutine.send(value) if thrown is None else self.coroutine.throw(thrown)
            except StopIteration as done:
                return cast(T, done.value)
            finally:
                self.meter.cpu_s += time.thread_time() - started
            value, thrown = None, None
            try:
                value = yield waiting
            except BaseException as exc:  # a cancellation: the coroutine gets it where it waits
                thrown = exc


def audience(rng: random.Random) -> Audience:
    band = MINOR_BAND if rng.random() < 0.1 else rng.choice(AGE_BANDS)
    return Audience(band, rng.choice(REGIONS), rng.choice(LANGUAGES), frozenset(rng.sample(INTERESTS, 3)))


class LoopWatch:
    """The event loop's stalls (how late a 1 ms sleep woke) and the garbage collector's pauses by generation."""

    def __init__(self) -> None:
        self.stalls: list[float] = []
        self.gc_pauses: dict[int, list[float]] = {}
        self._gc_started = 0.0

    async def probe(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(LOOP_PROBE_S)
            self.stalls.append(time.perf_counter() - started - LOOP_PROBE_S)

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_pauses.setdefault(info["generation"], []).append(time.perf_counter() - self._gc_started)


async def run(args: argparse.Namespace, valkey_url: str) -> None:
    rng = random.Random(args.seed)
    clock = Clock()
    rows = synthetic_rows(args.campaigns, rng, clock.now_ms())
    inventory = Inventory(pool=None, campaigns_max=args.campaigns + 1,  # type: ignore[arg-type]  # loaded here, not read
                          build_per_turn_max=args.refresh_rows_per_turn, full_every_ms=args.refresh_full_ms,
                          refresh_ms=args.refresh_ms)
    inventory.install(await inventory.load(rows, clock.now_ms()))
    database = Database(rows, random.Random(args.seed + 1))
    decider = Decider(inventory, AuctionRule(50, 0.01, 200, PacingRule(0.01, 1.3)), rng)
    decider.rank()
    # As a node connects: a blocking pool of redis_connections_max (64), a command waits for a free connection.
    client = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(valkey_url, max_connections=64))
    caps = FrequencyCaps(client)
    signer = ImpressionSigner(Tokens("benchmark secret", 3600, clock), 3600_000)
    viewers = [(user_id, audience(rng)) for user_id in range(1, args.viewers + 1)]
    from_due: list[float] = []
    own: list[float] = []
    refreshes: dict[bool, list[tuple[float, float]]] = {False: [], True: []}  # full: (wall s, CPU s on the loop)
    served = 0
    watch = LoopWatch()

    async def decide(due: float) -> None:
        nonlocal served
        started = time.perf_counter()
        user_id, who = rng.choice(viewers)
        now_ms = clock.now_ms()
        choice = await choose_within_caps(decider, caps, user_id, who, now_ms, CAP_RETRIES_MAX)
        if choice is not None:
            signer.issue(choice.campaign.id, choice.group.id, choice.creative.id, user_id, choice.group.bid_kind,
                         choice.outcome.price_millicents, now_ms)
            database.serve(choice.campaign.id, choice.group.id, choice.outcome.price_millicents)
            served += 1
        ended = time.perf_counter()
        from_due.append(ended - due)
        own.append(ended - started)

    async def refresh_once(now_ms: int, full: bool) -> None:
        """What Ads.refresh does: read (here: make the rows the driver would return), build, rank, install."""
        rows = await database.read(full, inventory.watermark or 0, *inventory.reread())
        loaded = await inventory.load(rows, now_ms)
        ranking = await decider.prepare(loaded, args.refresh_rows_per_turn)
        inventory.install(loaded)
        decider.install(ranking)

    async def refresh() -> None:
        while True:
            await asyncio.sleep(args.refresh_ms / 1000)
            database.redefine(args.definition_changes)
            now_ms = clock.now_ms()
            full = args.refresh_full or inventory.full_due()
            meter = LoopTime()
            started = time.perf_counter()
            await meter(refresh_once(now_ms, full))
            refreshes[full].append((time.perf_counter() - started, meter.cpu_s))

    heap.freeze_startup_heap()  # as the node does once it serves (livecore/cli.py)
    gc.callbacks.append(watch.on_gc)
    background = [asyncio.create_task(watch.probe())]
    if args.refresh_ms:
        background.append(asyncio.create_task(refresh()))
    cpu_start = time.process_time()
    elapsed = await open_loop(args.rate, args.seconds, decide)
    cpu_s = time.process_time() - cpu_start
    gc.callbacks.remove(watch.on_gc)
    for task in background:
        task.cancel()
    await client.aclose()
    report(args, from_due, own, refreshes, watch, elapsed, cpu_s, served)


async def open_loop(rate: int, seconds: float, decide: Callable[[float], Coroutine[Any, Any, None]]) -> float:
    """Start `decide(due)` at `rate` per second for `seconds`, each when due whether or not the ones before are done;
    the seconds until the last is done."""
    running: set[asyncio.Task[None]] = set()
    start = time.perf_counter()
    for n in range(int(rate * seconds)):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(decide(due))
        running.add(task)
        task.add_done_callback(running.discard)
    await asyncio.gather(*running)
    return time.perf_counter() - start


def pct(values: list[float], p: float) -> float:
    """The p-th percentile in ms of values in seconds, sorted."""
    return values[min(len(values) - 1, int(p / 100 * len(values)))] * 1000


def print_latency(from_due: list[float], own: list[float]) -> None:
    """The decisions' latency percentiles (both lists sorted)."""
    for name, values in (("from due", from_due), ("own time", own)):
        print(f"latency {name} ms: p50 {pct(values, 50):.2f}  p90 {pct(values, 90):.2f}  p99 {pct(values, 99):.2f}"
              f"  p99.9 {pct(values, 99.9):.2f}  max {values[-1] * 1000:.2f}")
    print(f"  within 10 ms from due: {sum(v <= 0.010 for v in from_due) / len(from_due):.2%}")


def print_loop(watch: LoopWatch) -> None:
    """The event loop's stalls (sorted) and the garbage collector's pauses."""
    print(f"event loop stalls over a {LOOP_PROBE_S * 1000:.0f} ms sleep: p99 {pct(watch.stalls, 99):.2f} ms,"
          f" max {watch.stalls[-1] * 1000:.1f} ms")
    for generation, pauses in sorted(watch.gc_pauses.items()):
        print(f"gc generation {generation}: {len(pauses)} collections, {sum(pauses) * 1000:.1f} ms in all,"
              f" longest {max(pauses) * 1000:.1f} ms")


def report(args: argparse.Namespace, from_due: list[float], own: list[float],
           refreshes: dict[bool, list[tuple[float, float]]], watch: LoopWatch, elapsed: float, cpu_s: float,
           served: int) -> None:
    for values in (from_due, own, watch.stalls):
        values.sort()
    n = len(from_due)
    print(f"campaigns {args.campaigns} (ad groups {3 * args.campaigns}), viewers {args.viewers},"
          f" refresh every {args.refresh_ms} ms ({args.refresh_rows_per_turn} rows a turn), every campaign read whole"
          f" again in turn every {args.refresh_full_ms} ms, {args.definition_changes} campaign definitions changed a"
          " second")
    print(f"decisions {n} in {elapsed:.1f} s ({n / elapsed:.0f}/s, asked {args.rate}/s), {served} served,"
          f" on {args.loop}")
    print_latency(from_due, own)
    for full, name in ((False, "what changed"), (True, "full")):
        if refreshes[full]:
            wall = sorted(w for w, _ in refreshes[full])
            cpu = sorted(c for _, c in refreshes[full])
            print(f"refreshes reading {name}: {len(wall)}, wall median {pct(wall, 50):.1f} ms, max"
                  f" {wall[-1] * 1000:.1f} ms (the loop serving decisions between turns); CPU on the loop median"
                  f" {pct(cpu, 50):.2f} ms, max {cpu[-1] * 1000:.2f} ms")
    print_loop(watch)
    print(f"CPU of this process per decision: {cpu_s / n * 1000:.3f} ms (Valkey's not counted; refreshes and the"
          f" loop probe included); load average while it ran: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=500, help="decisions per second")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--campaigns", type=int, default=1000)
    parser.add_argument("--viewers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--refresh-ms", type=int, default=1000, help="as the node's ads_refresh_ms; 0: never")
    parser.add_argument("--refresh-rows-per-turn", type=int, default=300,
                        help="as the node's ads_refresh_rows_per_turn_max")
    parser.add_argument("--refresh-full-ms", type=int, default=60_000, help="as the node's ads_refresh_full_ms")
    parser.add_argument("--refresh-full", action="store_true",
                        help="every refresh reads everything, as a node holding ads_campaigns_in_memory_max does")
    parser.add_argument("--definition-changes", type=int, default=1,
                        help="campaigns whose definition (an ad group's bid) changes each second")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="the event loop: uvloop as `livecore serve` runs, or asyncio's own")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        valkey = EmbeddedValkey(Path(directory) / "valkey")
        url = valkey.start()
        if args.loop == "uvloop":
            import uvloop

            uvloop.install()
        try:
            asyncio.run(run(args, url))
        finally:
            valkey.stop()


if __name__ == "__main__":
    main()
