"""Bidding while PostgreSQL is down: the node's own PostgreSQL (a real server process) is stopped in the middle of
a stream of bids over HTTP and the room WebSocket, then started again.

Checks: no bid is acknowledged that is not in the database (every `200` answer's entry is there, with its key);
while the database is down bids are answered `503 livecore:unavailable` naming the database, never with a 2xx,
and the room socket answers a bid with a `database-unavailable` error, never a `bid`; once PostgreSQL is back,
retries with the same keys and new bids are decided again, and the accepted bids replayed through the reference
rules give the database's history and state, so the rules held across the outage; the auction then closes once
with the leader as winner."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from lots import ReferenceAuction, bidder, open_auction, room_with_product
from money import commerce_of, key
from roomclient import events_until, send

from commerce.auctions import auctions as auction_domain
from livecore.clock import ManualClock
from livecore.embedded import EmbeddedPostgres

PROBLEM = "application/problem+json"
FAILURES_PER_BIDDER = 3  # answers each HTTP bidder gets while the database is down before it stops
BIDS_PER_BIDDER_MAX = 400
ACCEPTED_BEFORE_THE_STOP = 10  # PostgreSQL is stopped in the middle of the stream of bids, after these
RETRIES_MAX = 100  # tries of one bid after PostgreSQL is back, while the node's pool reconnects
RETRY_PAUSE_S = 0.1
ACCEPTED = ("leading", "outbid", "raised")


@dataclass
class Sent:
    bidder_id: int
    amount_cents: int
    idempotency_key: str
    answers: list[tuple[int, str, Any]] = field(default_factory=list)  # (status, content type, body)


async def post_bid(node: Any, token: str, auction_id: int, sent: Sent) -> tuple[int, str, Any]:
    body = {"amount_cents": sent.amount_cents, "idempotency_key": sent.idempotency_key}
    async with node.http.post(f"{node.url}/api/auctions/{auction_id}/bids", json=body,
                              headers={"Authorization": f"Bearer {token}"}) as response:
        answer = (response.status, response.content_type, await response.json(content_type=None))
    sent.answers.append(answer)
    return answer


def acknowledged(answer: tuple[int, str, Any]) -> bool:
    status, _, body = answer
    return 200 <= status < 300 and body["outcome"] in ACCEPTED


async def test_bids_while_postgresql_is_stopped_are_never_acknowledged_and_the_rules_hold_after(
        own_postgres: EmbeddedPostgres, node_factory) -> None:  # type: ignore[no-untyped-def]
    clock = ManualClock()
    node = await node_factory(clock=clock, database_url=own_postgres.url, auction_sweep_ms=3_600_000)
    room = await room_with_product(node)
    ann, bob, cy = await bidder(node), await bidder(node), await bidder(node)
    auction = await open_auction(node, room, duration_s=600)
    aid = auction["id"]
    socket = await node.ws(room.stream["id"], cy["token"])
    await events_until(socket, lambda evs: any(e["type"] == "snapshot" for e in evs))

    amounts = itertools.count(2000, 100)  # every bid above all before it: each is accepted while the database is up
    sent: list[Sent] = []
    some_accepted, stopped = asyncio.Event(), asyncio.Event()

    async def keep_bidding(person: dict[str, Any]) -> None:
        failures = 0
        for _ in range(BIDS_PER_BIDDER_MAX):
            one = Sent(person["id"], next(amounts), key())
            sent.append(one)
            answer = await post_bid(node, person["token"], aid, one)
            if sum(acknowledged(a) for s in sent for a in s.answers) >= ACCEPTED_BEFORE_THE_STOP:
                some_accepted.set()
            if stopped.is_set() and answer[0] >= 500:
                failures += 1
                if failures >= FAILURES_PER_BIDDER:
                    return
        raise AssertionError("the bids never failed while PostgreSQL was stopped")

    async def stop_postgres_after_some_bids() -> None:
        await some_accepted.wait()
        await asyncio.to_thread(own_postgres.stop)
        stopped.set()

    await asyncio.gather(keep_bidding(ann), keep_bidding(bob), stop_postgres_after_some_bids())

    # The database is down: the room socket's bid gets an error, not an acknowledgement.
    over_ws = Sent(cy["id"], next(amounts), key())
    await send(socket, {"type": "bid", "auction_id": aid, "amount_cents": over_ws.amount_cents,
                        "idempotency_key": over_ws.idempotency_key})
    answered = await events_until(socket, lambda evs: any(e["type"] in ("bid", "error") for e in evs))
    ws_answer = next(e for e in answered if e["type"] in ("bid", "error"))
    assert ws_answer["type"] == "error" and ws_answer["command"] == "bid", ws_answer
    assert ws_answer["code"] == "database-unavailable", ws_answer

    for one in sent:
        for status, content_type, body in one.answers:
            if status < 300:
                continue
            # The only refusal a live database gives an escalating bid is losing a race to the other bidder.
            assert ((status == 503 and body["type"] == "livecore:unavailable" and body["unavailable"] == "database")
                    or body["type"] == "livecore:bid-too-low"), (status, body)
            assert content_type == PROBLEM and body["type"].startswith("livecore:"), (status, content_type, body)
    failed = [one for one in sent if one.answers[-1][0] >= 500]
    assert len(failed) >= 2 * FAILURES_PER_BIDDER

    await asyncio.to_thread(own_postgres.start)

    # Back: every bid that got no answer but a 5xx is retried with its key until the node answers it.
    tokens = {ann["id"]: ann["token"], bob["id"]: bob["token"], cy["id"]: cy["token"]}
    for one in [*failed, over_ws]:
        for _ in range(RETRIES_MAX):
            status, _, _ = await post_bid(node, tokens[one.bidder_id], aid, one)
            if status < 500:
                break
            await asyncio.sleep(RETRY_PAUSE_S)  # the node's pool reconnecting, not a deadline
        assert one.answers[-1][0] < 500, one.answers[-1]
    for person in (ann, bob):
        more = Sent(person["id"], next(amounts), key())
        sent.append(more)
        assert acknowledged(await post_bid(node, person["token"], aid, more)), more.answers
    sent.append(over_ws)

    # No bid was acknowledged that is not in the database: every 2xx answer's entry is there with its key.
    rows = await node.node.pool.fetch("SELECT seq, bidder_id, amount_cents, idempotency_key FROM auction_bids"
                                      " WHERE auction_id = $1 AND idempotency_key IS NOT NULL", aid)
    by_key = {r["idempotency_key"]: r for r in rows}
    acknowledged_keys = set()
    for one in sent:
        for answer in one.answers:
            if acknowledged(answer):
                _, _, body = answer
                row = by_key.get(one.idempotency_key)
                assert row is not None, f"bid {one.idempotency_key} was acknowledged but is not in the database"
                assert (row["seq"], row["bidder_id"]) == (body["bid"]["seq"], one.bidder_id)
                acknowledged_keys.add(one.idempotency_key)
    assert set(by_key) == acknowledged_keys, "a bid is in the database that no answer acknowledged"

    # The rules held: the accepted bids, replayed in commit order through the reference rules, make the database's
    # auction, and it closes once with its leader as the winner.
    status_view = await node.http.get(f"{node.url}/api/auctions/{aid}")
    final = await status_view.json()
    model = ReferenceAuction(auction, room.seller["id"], set())
    ordered = sorted(rows, key=lambda r: r["seq"])
    for row in ordered:
        assert model.offer(row["bidder_id"], "bid", row["amount_cents"], None, clock.now_ms()) in ACCEPTED
    assert model.history == [(b["seq"], b["bidder"]["id"], b["kind"], b["amount_cents"], b["outcome"])
                             for b in final["bids"]]
    assert (model.price, model.leader, model.version) == (
        final["price_cents"], final["leader"]["id"], final["version"])
    clock.advance(600)
    assert await auction_domain.close_due(commerce_of(node).auctions) == [aid]
    assert await auction_domain.close_due(commerce_of(node).auctions) == []
    won = await node.node.pool.fetchrow("SELECT winner_id, amount_cents FROM auction_wins WHERE auction_id = $1", aid)
    assert tuple(won) == (model.leader, model.price)
