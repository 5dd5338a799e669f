"""Bids one auction takes: concurrent bidders over HTTP and the room WebSocket against one lot on one node.

Not a test. Starts embedded PostgreSQL and Valkey, one `livecore serve` node in a subprocess, makes a seller with
a live stream, a product and an hour-long auction, signs up bidders who save the local provider's test card, and
lets them bid for a fixed time. Each bidder keeps one bid in flight, half of the time with a maximum (proxy bid).
Two strategies: `race` (the default), where each bidder bids a random few increments above the minimum it last
saw, as people racing in a live room do (most bids lose the race and are refused as below the increment, which
the node answers without a round trip); and `escalate`, where every bid is a step above every bid sent before it,
so nearly all are accepted and each batch is committed: the throughput of the atomic commit itself.

Prints bids decided and accepted per second, latency percentiles (send to answer; every answer comes after the
batch its bid was decided in committed), CPU milliseconds per bid of each process (node, PostgreSQL, Valkey, this
client), and the rules checked at the end: the accepted bids, replayed in the order they were committed through
commerce/auctions/rules.py, must give exactly the database's history and state, and every accepted answer must be
in the history once.

    .venv/bin/python benchmarks/auction_bids.py --bidders 64 --seconds 20 --strategy race
    .venv/bin/python benchmarks/auction_bids.py --bidders 64 --seconds 20 --strategy escalate
    .venv/bin/python benchmarks/auction_bids.py --bidders 64 --seconds 20 --strategy escalate --rate 1200
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import secrets
import time
from collections import Counter
from dataclasses import dataclass

import aiohttp
import asyncpg
import orjson
from benchnode import BenchNode, bench_node, call, sign_up
from PIL import Image

from commerce.auctions import increments, rules
from commerce.providers import SUCCEEDING_CARD
from loadtest.cpumeter import MACHINE

STEP_CENTS = 10
INCREMENTS = [[0, STEP_CENTS]]
START_CENTS = 2000
SPREAD_STEPS = 30  # a bid is 0..30 increments above the minimum its bidder last saw


@dataclass
class Bid:
    bidder_id: int
    amount_cents: int
    max_cents: int | None
    key: str
    seq: int | None = None  # the bidder's history entry, when accepted
    replayed: bool = False


class Pace:
    """When a bidder sends next: as soon as its last bid is answered, or on a schedule when a total rate is set."""

    def __init__(self, rate: float, bidders: int, index: int) -> None:
        self.interval_s = bidders / rate if rate else 0.0
        self.next_at = time.monotonic() + self.interval_s * index / max(1, bidders)

    async def wait(self) -> None:
        if self.interval_s:
            delay = self.next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self.next_at = max(self.next_at + self.interval_s, time.monotonic() - self.interval_s)


class Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.outcomes: Counter[str] = Counter()
        self.accepted: list[Bid] = []

    def record(self, started: float, bid: Bid, outcome: str) -> None:
        self.latencies.append(time.perf_counter() - started)
        self.outcomes[outcome] += 1
        if bid.seq is not None:
            self.accepted.append(bid)


async def _signup(http: aiohttp.ClientSession, url: str) -> dict:
    """A bidder: an adult account with the local provider's test card saved."""
    account = await sign_up(http, url)
    status, method = await call(http, "POST", f"{url}/api/payment-methods", account["token"],
                                 {"card_number": SUCCEEDING_CARD})
    assert status == 201, method
    return account


async def _lot(http: aiohttp.ClientSession, node: BenchNode) -> tuple[dict, dict]:
    """A seller, their live stream, a product and an hour-long auction of one of its variants."""
    url = node.url
    seller = await _signup(http, url)
    headers = {"Authorization": f"Bearer {seller['token']}"}
    _, stream = await call(http, "POST", f"{url}/api/streams", seller["token"], {"title": "auction bench"})
    await node.mark_live(stream["id"])  # auctions run in a live room
    picture = io.BytesIO()
    Image.new("RGB", (300, 300), (200, 30, 60)).save(picture, "PNG")
    form = aiohttp.FormData()
    form.add_field("file", picture.getvalue(), filename="design.png", content_type="image/png")
    async with http.post(f"{url}/api/designs", data=form, headers=headers) as response:
        design = await response.json()
    _, product = await call(http, "POST", f"{url}/api/products", seller["token"], {
        "design_id": design["id"], "base_item_id": "tshirt", "title": "Bench tee", "price_cents": 2500,
        "variant_ids": ["tshirt-m-black"]})
    status, auction = await call(http, "POST", f"{url}/api/streams/{stream['id']}/auctions", seller["token"], {
        "product_id": product["id"], "variant_id": "tshirt-m-black", "start_cents": START_CENTS,
        "duration_s": 3600, "increments": INCREMENTS})
    assert status == 201, auction
    return seller, auction


class Strategy:
    """How a bidder picks its next amount: `race` from the minimum it last saw; `escalate` above every bid this
    client sent before (one counter shared by all bidders)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._sent = 0

    def next_bid(self, rng: random.Random, bidder_id: int, known_min: int) -> Bid:
        if self.name == "escalate":
            self._sent += 1
            amount = START_CENTS + self._sent * 100 * STEP_CENTS
            max_cents = amount + rng.randrange(1, 50) * STEP_CENTS if rng.random() < 0.5 else None
        else:
            amount = known_min + rng.randrange(0, SPREAD_STEPS) * STEP_CENTS
            max_cents = amount + rng.randrange(1, 50) * STEP_CENTS if rng.random() < 0.5 else None
        return Bid(bidder_id, amount, max_cents, secrets.token_hex(8))


def _body(bid: Bid) -> dict:
    body = {"amount_cents": bid.amount_cents, "idempotency_key": bid.key}
    if bid.max_cents is not None:
        body["max_cents"] = bid.max_cents
    return body


async def _http_bidder(http, url, bidder, auction_id, stop_at, tally, rng, strategy, pace) -> None:  # type: ignore[no-untyped-def]
    path, known = f"{url}/api/auctions/{auction_id}/bids", START_CENTS
    headers = {"Authorization": f"Bearer {bidder['token']}"}
    while time.monotonic() < stop_at:
        await pace.wait()
        bid = strategy.next_bid(rng, bidder["id"], known)
        started = time.perf_counter()
        async with http.post(path, json=_body(bid), headers=headers) as response:
            answer = orjson.loads(await response.read())
        if response.status == 200:
            bid.seq, bid.replayed = answer["bid"]["seq"], answer["replayed"]
            outcome = answer["outcome"]
        else:
            outcome = answer["type"].removeprefix("livecore:")
        known = max(known, answer.get("auction", {}).get("min_next_cents", known))
        tally.record(started, bid, outcome)


async def _ws_bidder(http, url, bidder, auction_id, stream_id, stop_at, tally, rng, strategy, pace) -> None:  # type: ignore[no-untyped-def]
    """Bids over the room socket; learns the minimum from its replies and from the room's auction events."""
    socket = await http.ws_connect(f"{url}/ws/rooms/{stream_id}", params={"token": bidder["token"]},
                                   protocols=["livecore.json"])
    known, version = START_CENTS, 0
    try:
        await socket.receive()  # the snapshot
        while time.monotonic() < stop_at:
            await pace.wait()
            bid = strategy.next_bid(rng, bidder["id"], known)
            started = time.perf_counter()
            await socket.send_str(orjson.dumps({"type": "bid", "auction_id": auction_id, **_body(bid)}).decode())
            outcome = None
            while outcome is None:
                for event in orjson.loads((await socket.receive(timeout=30)).data):
                    if event.get("type") == "auction" and event["version"] > version:
                        known, version = max(known, event["min_next_cents"]), event["version"]
                    elif event.get("type") == "bid" and event.get("idempotency_key") == bid.key:
                        bid.seq, bid.replayed, outcome = event["bid"]["seq"], event["replayed"], event["outcome"]
                        known = max(known, event["auction"]["min_next_cents"])
                    elif event.get("type") == "error" and event.get("command") == "bid":
                        outcome = event["code"]
            tally.record(started, bid, outcome)
    finally:
        await socket.close()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


async def check_rules(database_url: str, auction_id: int, accepted: list[Bid]) -> list[str]:
    """Replay the accepted bids in commit order through the rules; what differs from the database."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        row = await pool.fetchrow("SELECT * FROM auctions WHERE id = $1", auction_id)
        history = await pool.fetch("SELECT * FROM auction_bids WHERE auction_id = $1 ORDER BY seq", auction_id)
    finally:
        await pool.close()
    problems = []
    first = [b for b in accepted if not b.replayed]
    by_seq = {b.seq: b for b in first}
    if len(by_seq) != len(first):
        problems.append("two accepted answers name the same history entry")
    keyed = [(r["seq"], r["bidder_id"], r["idempotency_key"]) for r in history if r["idempotency_key"]]
    if keyed != [(seq, by_seq[seq].bidder_id, by_seq[seq].key) for seq in sorted(by_seq)]:
        problems.append("the history's bids are not exactly the accepted answers")
    terms = rules.Terms(row["seller_id"], row["start_cents"], increments.stored("custom", INCREMENTS),
                        row["sudden_death"], row["buy_now_cents"], row["snipe_window_ms"], row["extension_ms"])
    state = rules.opening_state(terms, row["opened_ms"], row["duration_ms"])
    entries: list[rules.Entry] = []
    for seq in sorted(by_seq):
        bid = by_seq[seq]
        decision = rules.decide(terms, state, rules.Offer(bid.bidder_id, "bid", bid.amount_cents, bid.max_cents),
                                row["opened_ms"])
        if not decision.accepted:
            problems.append(f"entry {seq} would have been refused ({decision.outcome})")
            break
        state, entries = decision.state, entries + list(decision.entries)
    replayed = [(e.seq, e.bidder_id, e.kind, e.amount_cents, e.outcome) for e in entries]
    stored = [(r["seq"], r["bidder_id"], r["kind"], r["amount_cents"], r["outcome"]) for r in history]
    if replayed != stored:
        problems.append("replaying the accepted bids gives another history")
    if (state.price_cents, state.leader_id, state.leader_max_cents, state.version) != (
            row["price_cents"], row["leader_id"], row["leader_max_cents"], row["version"]):
        problems.append("replaying the accepted bids gives another price, leader or version")
    return problems


async def run(args: argparse.Namespace, node: BenchNode) -> None:
    url, meter = node.url, node.meter
    tally = Tally()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            await node.wait_ready(http)
            _seller, auction = await _lot(http, node)
            bidders = await asyncio.gather(*[_signup(http, url) for _ in range(args.bidders)])
            stop_at = time.monotonic() + args.seconds
            meter.sample()
            started, started_monotonic = time.perf_counter(), time.monotonic()
            strategy, n = Strategy(args.strategy), len(bidders)
            await asyncio.gather(*[
                _ws_bidder(http, url, b, auction["id"], auction["stream_id"], stop_at, tally, random.Random(i),
                           strategy, Pace(args.rate, n, i))
                if i % 2 else _http_bidder(http, url, b, auction["id"], stop_at, tally, random.Random(i), strategy,
                                           Pace(args.rate, n, i))
                for i, b in enumerate(bidders)
            ])
            elapsed = time.perf_counter() - started
            meter.sample()
            cpu_s = meter.between(started_monotonic, time.monotonic())
            async with http.get(f"{url}/metrics") as r:
                metrics = await r.text()
    finally:
        node.server.terminate()
    figures = {line.split()[0]: float(line.split()[-1]) for line in metrics.splitlines()
               if line.startswith(("livecore_auction_bid_batch_bids_count", "livecore_auction_bid_batch_bids_sum",
                                   "livecore_auction_commit_conflicts_total"))}
    batches = figures.get("livecore_auction_bid_batch_bids_count", 0)
    per_batch = figures.get("livecore_auction_bid_batch_bids_sum", 0) / max(1, batches)
    problems = await check_rules(node.database_url, auction["id"], tally.accepted)
    decided = len(tally.latencies)
    accepted = sum(1 for b in tally.accepted if not b.replayed)
    print(f"bidders: {args.bidders} ({args.bidders - args.bidders // 2} HTTP, {args.bidders // 2} WebSocket), "
          f"{args.seconds} s, db pool {args.pool}, one lot, strategy {args.strategy}, "
          f"{'rate ' + str(args.rate) + ' bids/s offered' if args.rate else 'as fast as answered'}")
    print(f"bids: {decided} decided ({decided / elapsed:.0f}/s), {accepted} accepted ({accepted / elapsed:.0f}/s); "
          f"outcomes {dict(tally.outcomes.most_common())}")
    print(f"latency ms: p50 {_percentile(tally.latencies, .5) * 1000:.1f}  "
          f"p99 {_percentile(tally.latencies, .99) * 1000:.1f}  max {max(tally.latencies, default=0) * 1000:.1f}")
    per_bid = "  ".join(f"{name} {cpu_s.get(name, 0) * 1000 / max(1, decided):.2f}"
                        for name in ("node", "postgres", "valkey", "client"))
    print(f"CPU ms per decided bid: {per_bid}")
    print(f"machine busy {cpu_s.get(MACHINE, 0) / elapsed:.2f} of {os.cpu_count()} cores "
          f"(more than node + postgres + valkey + client means other work shared the machine)")
    print(f"batches: {batches:.0f}, {per_batch:.1f} bids each; commit conflicts "
          f"{figures.get('livecore_auction_commit_conflicts_total', 0):.0f}")
    print("rules: " + ("the accepted bids replay to the database's history and state" if not problems
                       else f"BROKEN {problems}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bidders", type=int, default=64, help="concurrent bidders (half HTTP, half WebSocket)")
    parser.add_argument("--seconds", type=float, default=15.0, help="how long to bid")
    parser.add_argument("--pool", type=int, default=20, help="the node's PostgreSQL pool size")
    parser.add_argument("--strategy", choices=("race", "escalate"), default="race",
                        help="race: bid from the minimum last seen; escalate: above every bid sent before")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="bids/s offered by all bidders together (0: each bids again as soon as answered)")
    args = parser.parse_args()
    with bench_node(db_pool_size_max=str(args.pool), auction_bids_listed_max="10") as node:
        asyncio.run(run(args, node))

if __name__ == "__main__":
    main()
