"""Gift throughput: concurrent senders over HTTP and the room WebSocket against one live stream.

Not a test. Starts embedded PostgreSQL and Valkey, one `livecore serve` node in a subprocess, signs up senders
who buy coins through the local test provider, sends gifts for a fixed time and prints gifts/s, latency
percentiles, the time from sending a gift to its room event reaching a watching viewer, CPU milliseconds per gift
of each process (node, PostgreSQL, Valkey, this client: on a shared machine these say more than gifts/s) and the
ledger invariant check.

    .venv/bin/python benchmarks/gifts.py --senders 64 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import time

import aiohttp
import asyncpg
import orjson
from benchnode import BenchNode, bench_node, call, sign_up

from commerce import invariants
from commerce.providers import SUCCEEDING_CARD
from loadtest.cpumeter import MACHINE

VIEWER_SETTLE_S_MAX = 10.0  # how long the viewer may still take to see the last gifts after the senders stop


async def _fund(http: aiohttp.ClientSession, url: str, token: str) -> None:
    status, purchase = await call(http, "POST", f"{url}/api/coins/purchases", token,
                                  {"package_id": "coins_10000", "idempotency_key": secrets.token_hex(8)})
    assert status == 201, purchase
    status, paid = await call(http, "POST", f"{url}/api/payments/local/{purchase['id']}/confirm", token,
                              {"card_number": SUCCEEDING_CARD})
    assert paid["state"] == "succeeded", paid


async def _http_sender(http, url, token, stream_id, stop_at, latencies, errors, sent_at) -> None:  # type: ignore[no-untyped-def]
    path = f"{url}/api/streams/{stream_id}/gifts"
    headers = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < stop_at:
        started = time.perf_counter()
        async with http.post(path, json={"gift_id": "rose", "idempotency_key": secrets.token_hex(8)},
                             headers=headers) as response:
            body = await response.read()
            if response.status == 200:
                latencies.append(time.perf_counter() - started)
                sent_at[orjson.loads(body)["transaction_id"]] = started
            else:
                errors.append(response.status)


async def _ws_sender(http, url, token, stream_id, stop_at, latencies, errors, sent_at) -> None:  # type: ignore[no-untyped-def]
    socket = await http.ws_connect(f"{url}/ws/rooms/{stream_id}", params={"token": token},
                                   protocols=["livecore.json"])
    try:
        await socket.receive()  # the snapshot
        while time.monotonic() < stop_at:
            key = secrets.token_hex(8)
            started = time.perf_counter()
            await socket.send_str(orjson.dumps({"type": "gift", "gift_id": "rose", "idempotency_key": key}).decode())
            answered = False
            while not answered:
                for event in orjson.loads((await socket.receive(timeout=10)).data):
                    if event.get("type") == "wallet" and event.get("idempotency_key") == key:
                        latencies.append(time.perf_counter() - started)
                        sent_at[event["transaction_id"]] = started
                        answered = True
                    elif event.get("type") == "error" and event.get("command") == "gift":
                        errors.append(event.get("code"))
                        answered = True
    finally:
        await socket.close()


async def _viewer(http, url, stream_id, sent_at, seen_at, all_seen) -> None:  # type: ignore[no-untyped-def]
    """Watch the room and note when each gift's event arrives (by its transaction id); `all_seen` is set once the
    senders are done (`sent_at[0]`) and every gift they sent has been seen."""
    socket = await http.ws_connect(f"{url}/ws/rooms/{stream_id}", protocols=["livecore.json"])
    try:
        async for message in socket:
            arrived = time.perf_counter()
            for event in orjson.loads(message.data):
                if event.get("type") == "gift":
                    seen_at.setdefault(event["id"], arrived)
            if 0 in sent_at and set(sent_at) - {0} <= set(seen_at):
                all_seen.set()
    finally:
        await socket.close()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


async def run(args: argparse.Namespace, node: BenchNode) -> None:
    url, meter = node.url, node.meter
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            await node.wait_ready(http)
            creator = await sign_up(http, url)
            _, stream = await call(http, "POST", f"{url}/api/streams", creator["token"], {"title": "bench"})
            await node.mark_live(stream["id"])
            senders = [await sign_up(http, url) for _ in range(args.senders)]
            await asyncio.gather(*[_fund(http, url, s["token"]) for s in senders])
            latencies: list[float] = []
            errors: list[object] = []
            sent_at: dict[int, float] = {}  # transaction id -> when its sender sent it
            seen_at: dict[int, float] = {}  # transaction id -> when the viewer saw its room event
            all_seen = asyncio.Event()
            viewer = asyncio.create_task(_viewer(http, url, stream["id"], sent_at, seen_at, all_seen))
            await asyncio.sleep(0.5)  # joined before the first gift
            stop_at = time.monotonic() + args.seconds
            meter.sample()
            started, started_monotonic = time.perf_counter(), time.monotonic()
            await asyncio.gather(*[
                (_ws_sender if i % 2 else _http_sender)(http, url, s["token"], stream["id"], stop_at, latencies, errors,
                                                        sent_at)
                for i, s in enumerate(senders)
            ])
            elapsed = time.perf_counter() - started
            sent_at[0] = 0.0  # the senders are done (no transaction has id 0)
            if set(sent_at) - {0} - set(seen_at):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(all_seen.wait(), VIEWER_SETTLE_S_MAX)
            del sent_at[0]
            viewer.cancel()
            to_viewer = [seen_at[tx] - sent_at[tx] for tx in sent_at if tx in seen_at]
            unseen = len(set(sent_at) - set(seen_at))
            meter.sample()
            cpu_s = meter.between(started_monotonic, time.monotonic())
            async with http.get(f"{url}/metrics") as r:
                metrics = await r.text()
            batched = {line.split()[0]: float(line.split()[-1]) for line in metrics.splitlines()
                       if line.startswith(("livecore_gift_batch_gifts_count", "livecore_gift_batch_gifts_sum"))}
            per_batch = batched.get("livecore_gift_batch_gifts_sum", 0) / max(1, batched.get(
                "livecore_gift_batch_gifts_count", 0))
    finally:
        node.server.terminate()
    pool = await asyncpg.create_pool(node.database_url, min_size=1, max_size=2)
    try:
        broken = await invariants.violations(pool)
        journal = await pool.fetchval("SELECT count(*) FROM ledger_transactions WHERE kind = 'gift'")
        waiting = await pool.fetchval("SELECT count(*) FROM room_event_outbox")
    finally:
        await pool.close()
    print(f"senders: {args.senders} ({args.senders - args.senders // 2} HTTP, {args.senders // 2} WebSocket), "
          f"{args.seconds} s, db pool {args.pool}")
    print(f"gifts: {len(latencies)} ok, {len(errors)} refused; {len(latencies) / elapsed:.0f} gifts/s")
    print(f"latency ms: p50 {_percentile(latencies, .5) * 1000:.1f}  p99 {_percentile(latencies, .99) * 1000:.1f}  "
          f"max {max(latencies, default=0) * 1000:.1f}")
    print(f"send to viewer ms: p50 {_percentile(to_viewer, .5) * 1000:.1f}  "
          f"p99 {_percentile(to_viewer, .99) * 1000:.1f}  max {max(to_viewer, default=0) * 1000:.1f}; "
          f"{unseen} committed gifts not seen by the viewer")
    per_gift = "  ".join(f"{name} {cpu_s.get(name, 0) * 1000 / max(1, len(latencies)):.2f}"
                         for name in ("node", "postgres", "valkey", "client"))
    print(f"CPU ms per gift: {per_gift}")
    print(f"machine busy {cpu_s.get(MACHINE, 0) / elapsed:.2f} of {os.cpu_count()} cores "
          f"(more than node + postgres + valkey + client means other work shared the machine)")
    print(f"gift transactions in the journal: {journal}; {per_batch:.1f} gifts per batch; "
          f"room events still in the outbox: {waiting:.0f}")
    print("invariants: " + ("all hold" if not broken else f"BROKEN {broken}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--senders", type=int, default=64, help="concurrent gift senders (half HTTP, half WS)")
    parser.add_argument("--seconds", type=float, default=15.0, help="how long to send")
    parser.add_argument("--pool", type=int, default=20, help="the node's PostgreSQL pool size")
    args = parser.parse_args()
    with bench_node(purchases_per_hour_max="100000", gift_coins_per_day_max="100000000",
                    db_pool_size_max=str(args.pool)) as node:
        asyncio.run(run(args, node))

if __name__ == "__main__":
    main()
