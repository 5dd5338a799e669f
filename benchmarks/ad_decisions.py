"""Ad decisions per For You slot at a fixed arrival rate: latency percentiles and CPU per decision. Not a test.

Starts an embedded Valkey (the frequency caps live there) and holds an in-memory inventory of synthetic campaigns
as a node does after its refresh: `--campaigns` campaigns of three ad groups each, CPM and CPC bids, targeting
drawn from age bands, regions, languages and interests (a quarter untargeted), even, front-loaded and asap pacing.
Viewers (a tenth of them minors) are drawn from `--viewers`. Requests arrive open-loop at `--rate` per second for
`--seconds`: each decision is timed from when it was due to start, so a slow one delays the next in the figures
too. A decision is exactly what the feed's ads stage runs (ads/service.py): read the viewer's caps (one HGETALL),
targeting, pacing and the auction in memory, count the serve (HINCRBY + EXPIRE in one MULTI) and sign the
impression token.

    .venv/bin/python benchmarks/ad_decisions.py --rate 500 --seconds 20 --campaigns 1000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from pathlib import Path

import redis.asyncio as redis

from ads.auction import BidKind
from ads.decisions import AuctionRule, Decider
from ads.frequency import FrequencyCaps, choose_within_caps
from ads.impressions import ImpressionSigner
from ads.inventory import AdGroup, Creative, Inventory, LiveCampaign
from ads.pacing import DAY_MS, Pacing, PacingRule, Schedule
from ads.service import CAP_RETRIES_MAX
from ads.targeting import AGE_BANDS, MINOR_BAND, Audience, Targeting
from livecore.accounts.tokens import Tokens
from livecore.clock import Clock
from livecore.embedded import EmbeddedValkey

REGIONS = ("US", "DE", "FR", "GB", "JP", "BR", "IN", "ES")
LANGUAGES = ("en", "de", "fr", "ja", "pt", "es")
INTERESTS = tuple(f"topic{n}" for n in range(60))
PACINGS: tuple[Pacing, ...] = ("even", "front_loaded", "asap")


def synthetic_inventory(campaigns: int, rng: random.Random, now_ms: int) -> Inventory:
    inventory = Inventory(pool=None, campaigns_max=campaigns)  # type: ignore[arg-type]  # filled here, not read
    live: dict[int, LiveCampaign] = {}
    group_id = 0
    for campaign_id in range(1, campaigns + 1):
        groups = []
        for _ in range(3):
            group_id += 1
            targeted = rng.random() >= 0.25
            targeting = Targeting(
                tuple(rng.sample(AGE_BANDS, rng.randint(0, 3))) if targeted else (),
                tuple(rng.sample(REGIONS, rng.randint(0, 2))) if targeted else (),
                tuple(rng.sample(LANGUAGES, rng.randint(0, 1))) if targeted else (),
                tuple(rng.sample(INTERESTS, rng.randint(1, 4))) if targeted else ())
            kind: BidKind = rng.choice(("cpm", "cpc"))
            groups.append(AdGroup(group_id, campaign_id, kind, rng.randint(100, 2000) if kind == "cpm"
                                  else rng.randint(10, 200), targeting, rng.randint(2, 10),
                                  (Creative(group_id, {"id": group_id}, "headline", None),),
                                  impressions=rng.randint(0, 100_000), clicks=rng.randint(0, 1000)))
        budget = rng.randint(10_000, 1_000_000) * 1000
        live[campaign_id] = LiveCampaign(
            campaign_id, campaign_id, {"id": campaign_id, "name": f"brand {campaign_id}"},
            Schedule(now_ms - DAY_MS, now_ms + 30 * DAY_MS, budget, budget * 30, rng.choice(PACINGS)), tuple(groups))
    inventory.replace(live)
    return inventory


def audience(rng: random.Random) -> Audience:
    band = MINOR_BAND if rng.random() < 0.1 else rng.choice(AGE_BANDS)
    return Audience(band, rng.choice(REGIONS), rng.choice(LANGUAGES), frozenset(rng.sample(INTERESTS, 3)))


async def run(args: argparse.Namespace, valkey_url: str) -> None:
    rng = random.Random(args.seed)
    clock = Clock()
    inventory = synthetic_inventory(args.campaigns, rng, clock.now_ms())
    decider = Decider(inventory, AuctionRule(50, 0.01, 200, PacingRule(0.01, 1.3)), rng)
    # As a node connects: a blocking pool of redis_connections_max (64), a command waits for a free connection.
    client = redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(valkey_url, max_connections=64))
    caps = FrequencyCaps(client)
    signer = ImpressionSigner(Tokens("benchmark secret", 3600, clock), 3600_000)
    viewers = [(user_id, audience(rng)) for user_id in range(1, args.viewers + 1)]
    latencies: list[float] = []
    served = 0

    async def decide(due: float) -> None:
        nonlocal served
        user_id, who = rng.choice(viewers)
        now_ms = clock.now_ms()
        choice = await choose_within_caps(decider, caps, user_id, who, now_ms, CAP_RETRIES_MAX)
        if choice is not None:
            signer.issue(choice.campaign.id, choice.group.id, choice.creative.id, user_id, choice.group.bid_kind,
                         choice.outcome.price_millicents, now_ms)
            served += 1
        latencies.append(time.perf_counter() - due)

    total = args.rate * args.seconds
    cpu_start = time.process_time()
    start = time.perf_counter()
    tasks = []
    for n in range(total):
        due = start + n / args.rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(decide(due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    cpu_s = time.process_time() - cpu_start
    await client.aclose()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    print(f"campaigns {args.campaigns} (ad groups {3 * args.campaigns}), viewers {args.viewers}")
    print(f"decisions {len(latencies)} in {elapsed:.1f} s ({len(latencies) / elapsed:.0f}/s, asked {args.rate}/s),"
          f" served an ad {served} ({served / len(latencies):.0%})")
    print(f"latency ms: p50 {pct(50):.2f}  p90 {pct(90):.2f}  p99 {pct(99):.2f}  p99.9 {pct(99.9):.2f}"
          f"  max {latencies[-1] * 1000:.2f}")
    print(f"CPU of this process per decision: {cpu_s / len(latencies) * 1000:.3f} ms (Valkey's not counted);"
          f" load average while it ran: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=int, default=500, help="decisions per second")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--campaigns", type=int, default=1000)
    parser.add_argument("--viewers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        valkey = EmbeddedValkey(Path(directory) / "valkey")
        url = valkey.start()
        try:
            asyncio.run(run(args, url))
        finally:
            valkey.stop()


if __name__ == "__main__":
    main()
