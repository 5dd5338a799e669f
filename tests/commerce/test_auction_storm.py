"""A storm of bids in an auction's last second: hundreds at once over HTTP and the room WebSocket, on two nodes that
share one database and one clock, some sent twice with the same key; then a wave at the end, and the close.

Checks: every bid gets an answer; every accepted bid is in the history exactly once and a repeat of its key
answers the same entry; replaying the accepted bids in the order they were committed through the reference rules
gives the database's history and state; each wave extended the end to the wave's time plus the extension; nothing
at the end is accepted; the auction closes once, with one winner; every client's view, folded from its events,
equals the database."""

from __future__ import annotations

import asyncio
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from lots import AuctionFold, ReferenceAuction, bidder, database_view, open_auction, room_with_product
from money import api, commerce_of, key
from roomclient import send

from commerce.auctions import auctions as auction_domain
from livecore.clock import ManualClock
from signaling import protocol

BIDDERS = 24
BIDS_PER_BIDDER_PER_WAVE = 8
REPEAT_EVERY = 5  # every fifth bid is sent a second time with the same key
EXTENSION_MS = 10_000
SETTINGS = {"auction_sweep_ms": 3_600_000, "auction_bids_listed_max": 100_000, "auction_bid_batch_max": 16}
WAIT_S = 30.0


@dataclass(eq=False)
class Sent:
    bidder_id: int
    amount_cents: int
    max_cents: int | None
    idempotency_key: str
    wave_ms: int
    answers: list[dict[str, Any]] = field(default_factory=list)  # {"outcome", "seq"?, "replayed"?}

    def body(self) -> dict[str, Any]:
        made: dict[str, Any] = {"amount_cents": self.amount_cents, "idempotency_key": self.idempotency_key}
        if self.max_cents is not None:
            made["max_cents"] = self.max_cents
        return made


class Client:
    """A room WebSocket that folds the auction's events and pairs each bid it sends with its reply: a socket's
    commands are carried out one after another, so replies (a private `bid` event or an `error`) come in order."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse, auction_id: int) -> None:
        self.socket = socket
        self.fold = AuctionFold(auction_id)
        self.pending: deque[tuple[Sent, asyncio.Future[None]]] = deque()
        self.changed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while not self.socket.closed:
            message = await self.socket.receive()
            if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                return
            events = protocol.decode_events(self.socket.protocol or protocol.JSON, message.data)
            for event in events:
                if event["type"] == "snapshot":
                    self.fold.take_snapshot(event)
                elif event["type"] == "bid" or (event["type"] == "error" and event["command"] == "bid"):
                    sent, done = self.pending.popleft()
                    if event["type"] == "bid":
                        assert event["idempotency_key"] == sent.idempotency_key
                        sent.answers.append({"outcome": event["outcome"], "seq": event["bid"]["seq"],
                                             "replayed": event["replayed"]})
                    else:
                        sent.answers.append({"outcome": event["code"]})
                    done.set_result(None)
            self.fold.take(events)
            self.changed.set()

    async def bid_all(self, queue: list[Sent]) -> None:
        waits = []
        for sent in queue:
            done = asyncio.get_running_loop().create_future()
            self.pending.append((sent, done))
            waits.append(done)
            await send(self.socket, {"type": "bid", "auction_id": self.fold.auction_id, **sent.body()})
        await asyncio.wait_for(asyncio.gather(*waits), WAIT_S)

    async def caught_up(self, version: int) -> None:
        while self.fold.state.get("version") != version:
            self.changed.clear()
            await self.changed.wait()


async def test_a_storm_of_last_second_bids_on_two_nodes(node_factory) -> None:  # type: ignore[no-untyped-def]
    clock = ManualClock()
    nodes = [await node_factory(clock=clock, **SETTINGS), await node_factory(clock=clock, **SETTINGS)]
    room = await room_with_product(nodes[0])
    people = [await bidder(nodes[i % 2]) for i in range(BIDDERS)]
    auction = await open_auction(nodes[0], room, duration_s=60, snipe_window_ms=10_000, extension_ms=EXTENSION_MS)
    aid, stream_id = auction["id"], room.stream["id"]

    watchers = [Client(await nodes[n % 2].ws(stream_id, subprotocol=sub), aid)
                for n, sub in enumerate([protocol.JSON, protocol.MSGPACK, protocol.JSON, protocol.MSGPACK])]
    sockets = {p["id"]: Client(await nodes[i % 2].ws(stream_id, p["token"]), aid)
               for i, p in enumerate(people) if i % 2}  # half bid over their room socket, half over HTTP
    rng = random.Random(20261127)

    async def over_http(node, person: dict, sent: Sent) -> int:  # type: ignore[no-untyped-def]
        """Send one bid; the minimum next bid the answer shows."""
        status, body = await api(node, "POST", f"/api/auctions/{aid}/bids", person["token"], sent.body())
        assert status < 500, body  # nothing is lost to a server error
        sent.answers.append({"outcome": body["outcome"], "seq": body["bid"]["seq"], "replayed": body["replayed"]}
                            if status == 200 else {"outcome": body["type"].removeprefix("livecore:")})
        return body.get("auction", {}).get("min_next_cents", 0)

    async def rounds(i: int, person: dict, price_hint: int, made: list[Sent]) -> None:
        """One bidder in a storm: bid a little over the minimum it last saw, again and again, every few bids
        twice at once with the same key; over its room socket or over HTTP to the other node."""
        known = price_hint
        client = sockets.get(person["id"])
        for n in range(BIDS_PER_BIDDER_PER_WAVE):
            amount = known + rng.randrange(0, 30) * 100
            max_cents = amount + rng.randrange(0, 30) * 100 if rng.random() < 0.5 else None
            sent = Sent(person["id"], amount, max_cents, key(), clock.now_ms())
            made.append(sent)
            copies = 2 if n % REPEAT_EVERY == 0 else 1
            if client is not None:
                await client.bid_all([sent] * copies)
                known = max(known, client.fold.state.get("min_next_cents", 0))
            else:
                shown = await asyncio.gather(*[over_http(nodes[(i + 1) % 2], person, sent) for _ in range(copies)])
                known = max(known, *shown)

    async def wave(price_hint: int) -> list[Sent]:
        made: list[Sent] = []
        await asyncio.gather(*[rounds(i, person, price_hint, made) for i, person in enumerate(people)])
        return made

    async def current() -> dict[str, Any]:
        return (await api(nodes[0], "GET", f"/api/auctions/{aid}"))[1]

    clock.advance((auction["ends_at"] - 500 - clock.now_ms()) / 1000)  # the last half second
    first_ms = clock.now_ms()
    everything = await wave(2000)
    after_first = await current()
    assert after_first["ends_at"] == first_ms + EXTENSION_MS

    clock.advance((after_first["ends_at"] - 200 - clock.now_ms()) / 1000)  # the extension's last 200 ms
    second_ms = clock.now_ms()
    everything += await wave(after_first["price_cents"])
    after_second = await current()
    assert after_second["ends_at"] == second_ms + EXTENSION_MS

    clock.advance((after_second["ends_at"] - clock.now_ms()) / 1000)  # the end, by the server's clock
    at_the_end = await wave(after_second["min_next_cents"])
    assert {a["outcome"] for s in at_the_end for a in s.answers} == {"auction-closed"}
    assert aid in await auction_domain.close_due(commerce_of(nodes[1]).auctions)
    assert aid not in await auction_domain.close_due(commerce_of(nodes[0]).auctions)

    final = await current()
    assert final["state"] == "closed" and final["winner"] is not None and final["winner"] == final["leader"]
    wins = await nodes[0].node.pool.fetch("SELECT * FROM auction_wins WHERE auction_id = $1", aid)
    assert [(w["winner_id"], w["amount_cents"]) for w in wins] == [(final["winner"]["id"], final["price_cents"])]

    # Every bid was answered; an accepted one is in the history once, and its repeat answers the same entry.
    by_seq: dict[int, Sent] = {}
    for sent in everything:
        assert sent.answers
        accepted = [a for a in sent.answers if "seq" in a]
        assert len({a["seq"] for a in accepted}) <= 1 and sum(not a["replayed"] for a in accepted) <= 1
        if accepted:
            assert accepted[0]["seq"] not in by_seq
            by_seq[accepted[0]["seq"]] = sent
        assert {a["outcome"] for a in sent.answers if "seq" not in a} <= {"bid-too-low", "already-leading"}
    keyed = await nodes[0].node.pool.fetch(
        "SELECT seq, bidder_id, idempotency_key FROM auction_bids WHERE auction_id = $1"
        " AND idempotency_key IS NOT NULL ORDER BY seq", aid)
    assert [tuple(r) for r in keyed] == [(seq, by_seq[seq].bidder_id, by_seq[seq].idempotency_key)
                                         for seq in sorted(by_seq)]
    assert len(by_seq) > BIDDERS

    # The accepted bids, replayed in commit order through the reference rules, make the database's auction.
    model = ReferenceAuction(auction, room.seller["id"], set())
    for seq in sorted(by_seq):
        sent = by_seq[seq]
        assert model.offer(sent.bidder_id, "bid", sent.amount_cents, sent.max_cents, sent.wave_ms) in (
            "leading", "outbid", "raised")
    assert model.close(clock.now_ms())
    assert model.history == [(b["seq"], b["bidder"]["id"], b["kind"], b["amount_cents"], b["outcome"])
                             for b in final["bids"]]
    assert (model.price, model.leader, model.ends_at, model.version) == (
        final["price_cents"], final["leader"]["id"], final["ends_at"], final["version"])

    # Every client's view equals the database.
    want = database_view(final)
    for client in [*watchers, *sockets.values()]:
        await asyncio.wait_for(client.caught_up(final["version"]), WAIT_S)
        assert (client.fold.state, client.fold.history()) == want
        client.reader.cancel()
