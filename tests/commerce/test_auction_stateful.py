"""A Hypothesis state machine of one live auction against the real database and a running node: random bidders,
amounts and maximums over the domain call, HTTP and the room WebSocket, bursts decided in one batch, retries,
buy-it-now, the seller and a moderator trying to bid, the clock stepping through the anti-sniping window, the
close, and everyone leaving the room (so the node reads the room's shop from PostgreSQL again).

The expected outcomes come from `ReferenceAuction` (lots.py), written from the issue's rules and not from the code
under test. After every step: the auction row and its whole history equal the reference; the events a client
has folded and a fresh join's snapshot equal the database."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from typing import Any

import aiohttp
import hypothesis.strategies as st
import pytest
from aiohttp import web
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from images import design_png
from livenode import LIVE_FOR_THE_TEST_MS, Servers, unique_username
from lots import AuctionFold, ReferenceAuction, database_view
from roomclient import events_until, send

from commerce import COMMERCE, Commerce
from commerce.auctions import auctions
from commerce.auctions.bidding import BidRequest
from commerce.auctions.rules import Offer
from commerce.merch import designs, products
from commerce.providers import SUCCEEDING_CARD
from livecore.accounts import Account, accounts
from livecore.app import build_app
from livecore.clock import ManualClock
from livecore.config import Settings
from livecore.embedded import free_port
from livecore.http import Problem
from livecore.streams import streams
from signaling import moderation, protocol

SNAPSHOT_BIDS = 8
BIDDERS = 4
SELLER, MODERATOR = -1, -2  # indexes that pick the seller or the room's moderator as the bidder
EVENTS_WAIT_S = 10.0


class World:
    """One node on a private event loop, serving HTTP and WebSockets; a seller with a product to auction."""

    def __init__(self, servers: Servers) -> None:
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock()
        self.port = free_port()
        settings_ = Settings(
            host="127.0.0.1", port=self.port, node_id=f"auctions-{self.port}", database_url=servers.database_url,
            redis_url=servers.redis_url, seed_demo=False, data_dir=servers.directory / f"node-{self.port}",
            auction_sweep_ms=3_600_000, auction_snapshot_bids_max=SNAPSHOT_BIDS, auction_bids_listed_max=100_000,
        )
        self.runner = web.AppRunner(build_app(settings_, self.clock), handle_signals=False)
        self.run(self.runner.setup())
        self.run(web.TCPSite(self.runner, "127.0.0.1", self.port).start())
        self.commerce: Commerce = self.runner.app[COMMERCE]
        self.http = self.run(self._session())
        self.seller = self.run(self.account())
        design = designs.check_design(design_png(), "image/png", self.commerce.merch.design_limits)
        stored = self.run(designs.store_design(self.pool, self.seller.id, design, self.clock.now_ms()))
        self.product = self.run(products.create_product(self.commerce.merch, self.seller, stored["id"], "tshirt",
                                                        "Stateful tee", 2500, ["tshirt-s-black"], None))[0]

    @property
    def pool(self):  # type: ignore[no-untyped-def]
        return self.commerce.node.pool

    async def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    async def account(self, card: bool = False) -> Account:
        made = await accounts.create_account(
            self.pool, username=unique_username("a"), password="x" * 12, birth_date=dt.date(1990, 1, 1),
            region="US", roles=["viewer", "creator"])
        if card:
            await self.commerce.payment_methods.save(made, SUCCEEDING_CARD, None)
        return made

    def token(self, account: Account) -> str:
        return self.commerce.node.tokens.issue(account.id)

    async def ws(self, stream_id: int, account: Account | None = None) -> aiohttp.ClientWebSocketResponse:
        params = {"token": self.token(account)} if account else {}
        return await self.http.ws_connect(f"http://127.0.0.1:{self.port}/ws/rooms/{stream_id}", params=params,
                                          protocols=[protocol.JSON])

    def close(self) -> None:
        self.run(self.http.close())
        self.run(self.runner.cleanup())
        self.loop.close()


@pytest.fixture(scope="module")
def world(servers: Servers) -> Any:
    made = World(servers)
    yield made
    made.close()


amount_offsets = st.sampled_from([-2, -1, 0, 0, 0, 1, 2, 5])
max_offsets = st.one_of(st.none(), st.none(), st.integers(-1, 12))
bidders = st.sampled_from([0, 1, 2, 3, 0, 1, 2, 3, SELLER, MODERATOR])


def test_auction_rules_hold_against_the_database(world: World) -> None:
    class AuctionMachine(RuleBasedStateMachine):
        @initialize(increments=st.sampled_from(["dollar", "ebay", "whatnot", [[0, 10], [2500, 50], [4000, 200]]]),
                    sudden=st.booleans(), buy_now=st.one_of(st.none(), st.integers(2100, 6000)),
                    window_s=st.integers(0, 20), extension_s=st.integers(1, 20), duration_s=st.integers(10, 120))
        def open_auction(self, increments: Any, sudden: bool, buy_now: int | None, window_s: int, extension_s: int,
                         duration_s: int) -> None:
            self.stream_id = world.run(streams.create_stream(world.pool, world.seller.id, "stateful",
                                                             LIVE_FOR_THE_TEST_MS)).id
            assert world.run(streams.mark_live(world.pool, self.stream_id, LIVE_FOR_THE_TEST_MS))
            self.bidders = [world.run(world.account(card=True)) for _ in range(BIDDERS)]
            self.moderator = world.run(world.account(card=True))
            world.run(moderation.add_moderator(world.pool, self.stream_id, self.moderator.id))
            self.sockets: dict[int, aiohttp.ClientWebSocketResponse] = {}
            self.watcher, _ = world.run(self._joined())
            spec = {"product_id": world.product["id"], "variant_id": "tshirt-s-black", "start_cents": 2000,
                    "duration_s": duration_s, "increments": increments, "sudden_death": sudden,
                    "snipe_window_ms": window_s * 1000, "extension_ms": extension_s * 1000}
            if buy_now is not None:
                spec["buy_now_cents"] = buy_now
            view, _ = world.run(auctions.open_auction(world.commerce.auctions, world.seller, self.stream_id, spec,
                                                      None))
            self.auction_id = view["id"]
            self.model = ReferenceAuction(view, world.seller.id, {self.moderator.id})
            self.fold, self.fold_after_seq = AuctionFold(self.auction_id), 0
            self.accepted_keys: list[tuple[int, str, int]] = []  # bidder, key, seq of their entry

        async def _joined(self, account: Account | None = None) -> tuple[aiohttp.ClientWebSocketResponse, dict]:
            socket = await world.ws(self.stream_id, account)
            first = await events_until(socket, lambda evs: any(e["type"] == "snapshot" for e in evs))
            return socket, next(e for e in first if e["type"] == "snapshot")

        def who(self, index: int) -> Account:
            return world.seller if index == SELLER else self.moderator if index == MODERATOR else self.bidders[index]

        def amounts(self, amount_offset: int, max_offset: int | None) -> tuple[int, int | None]:
            minimum = self.model.minimum()
            amount = max(1, minimum + amount_offset * self.model.step(minimum))
            if max_offset is None:
                return amount, None
            return amount, max(1, amount + max_offset * self.model.step(amount))

        def expect(self, account: Account, kind: str, amount: int, max_cents: int | None, outcome: str,
                   key: str, answer: dict[str, Any] | None) -> None:
            expected = self.model.offer(account.id, kind, amount, max_cents, world.clock.now_ms())
            assert outcome == expected, (outcome, expected, kind, amount, max_cents)
            if answer is not None:
                self.accepted_keys.append((account.id, key, answer["bid"]["seq"]))

        @rule(index=bidders, amount_offset=amount_offsets, max_offset=max_offsets,
              via=st.sampled_from(["domain", "http", "ws"]))
        def bid(self, index: int, amount_offset: int, max_offset: int | None, via: str) -> None:
            account, key = self.who(index), secrets.token_hex(6)
            amount, max_cents = self.amounts(amount_offset, max_offset)
            outcome, answer = world.run(getattr(self, f"_bid_{via}")(account, amount, max_cents, key))
            self.expect(account, "bid", amount, max_cents, outcome, key, answer)

        async def _bid_domain(self, account: Account, amount: int, max_cents: int | None, key: str) -> tuple:
            try:
                answer = await auctions.place_bid(world.commerce.auctions, account, self.auction_id, amount,
                                                  max_cents, key)
            except Problem as problem:
                return problem.slug, None
            return answer["outcome"], answer

        async def _bid_http(self, account: Account, amount: int, max_cents: int | None, key: str) -> tuple:
            body = {"amount_cents": amount, "max_cents": max_cents, "idempotency_key": key}
            async with world.http.post(f"http://127.0.0.1:{world.port}/api/auctions/{self.auction_id}/bids",
                                       json={k: v for k, v in body.items() if v is not None},
                                       headers={"Authorization": f"Bearer {world.token(account)}"}) as response:
                answer = await response.json(content_type=None)
            if response.status != 200:
                assert answer["status"] == response.status and answer["detail"]
                return answer["type"].removeprefix("livecore:"), None
            return answer["outcome"], answer

        async def _bid_ws(self, account: Account, amount: int, max_cents: int | None, key: str) -> tuple:
            socket = self.sockets.get(account.id)
            if socket is None:
                socket, _ = await self._joined(account)
                self.sockets[account.id] = socket
            command = {"type": "bid", "auction_id": self.auction_id, "amount_cents": amount,
                       "idempotency_key": key, **({"max_cents": max_cents} if max_cents is not None else {})}
            await send(socket, command)

            def answered(events: list[dict]) -> bool:
                return any(e["type"] == "error" or (e["type"] == "bid" and e["idempotency_key"] == key)
                           for e in events)

            events = await events_until(socket, answered, EVENTS_WAIT_S)
            reply = next(e for e in events if e["type"] in ("error", "bid"))
            return (reply["code"], None) if reply["type"] == "error" else (reply["outcome"], reply)

        @rule(offers=st.lists(st.tuples(st.integers(0, BIDDERS - 1), amount_offsets, max_offsets),
                              min_size=2, max_size=8))
        def burst(self, offers: list[tuple[int, int, int | None]]) -> None:
            """Bids that arrive together: queued in this order and decided in one batch."""
            requests = []
            for index, amount_offset, max_offset in offers:
                account = self.bidders[index]
                amount, max_cents = self.amounts(amount_offset, max_offset)
                requests.append(BidRequest(Offer(account.id, "bid", amount, max_cents), secrets.token_hex(6),
                                           account.display_name))

            async def together() -> list[Any]:
                lot = await world.commerce.auctions.bidding.lot(self.auction_id)
                return await asyncio.gather(*[world.commerce.auctions.bidding.submit(lot, r) for r in requests])

            for request, result in zip(requests, world.run(together()), strict=True):
                offer = request.offer
                account = next(b for b in self.bidders if b.id == offer.bidder_id)
                self.expect(account, "bid", offer.amount_cents, offer.max_cents, result.outcome,
                            request.idempotency_key, {"bid": {"seq": result.entry.seq}} if result.entry else None)

        @precondition(lambda self: self.accepted_keys)
        @rule(data=st.data())
        def retry(self, data: st.DataObject) -> None:
            bidder_id, key, seq = data.draw(st.sampled_from(self.accepted_keys))
            account = next(b for b in self.bidders if b.id == bidder_id)
            answer = world.run(auctions.place_bid(world.commerce.auctions, account, self.auction_id, 1, None, key))
            assert answer["replayed"] and answer["bid"]["seq"] == seq

        @rule(index=bidders)
        def buy_now(self, index: int) -> None:
            account, key = self.who(index), secrets.token_hex(6)
            try:
                answer = world.run(auctions.buy_now(world.commerce.auctions, account, self.auction_id, key))
                outcome = answer["outcome"]
            except Problem as problem:
                outcome, answer = problem.slug, None
            self.expect(account, "buy_now", 0, None, outcome, key, answer)

        @rule(seconds=st.sampled_from([0.5, 1, 3, 8, 15, 30]))
        def time_passes(self, seconds: float) -> None:
            world.clock.advance(seconds)

        @rule()
        def sweep(self) -> None:
            closed = world.run(auctions.close_due(world.commerce.auctions))
            assert (self.auction_id in closed) == self.model.close(world.clock.now_ms())

        @rule()
        def everyone_leaves(self) -> None:
            """Every client reconnects; a node opening the room reads its shop from PostgreSQL, which must give the
            same view as the events did."""
            for socket in [self.watcher, *self.sockets.values()]:
                world.run(socket.close())
            self.sockets = {}
            loaded = world.commerce.room_view()
            world.run(world.commerce.load_room_view(self.stream_id, loaded))
            from_database = AuctionFold(self.auction_id)
            from_database.take_snapshot(loaded.snapshot())
            view = world.run(auctions.auction_view(world.commerce.auctions, self.auction_id))
            want_state, want_bids = database_view(view)
            assert (from_database.state, from_database.history()) == (want_state, want_bids[-SNAPSHOT_BIDS:])
            self.watcher, snapshot = world.run(self._joined())
            self.fold = AuctionFold(self.auction_id)
            self.fold.take_snapshot(snapshot)
            self.fold_after_seq = snapshot["auction"]["bids_count"] - len(snapshot["auction"]["bids"])

        def last_snapshot(self) -> dict[str, Any]:
            async def join() -> dict[str, Any]:
                socket = await world.ws(self.stream_id)
                try:
                    return (await events_until(socket, lambda evs: any(e["type"] == "snapshot" for e in evs)))[0]
                finally:
                    await socket.close()
            return world.run(join())

        @invariant()
        def the_database_follows_the_rules(self) -> None:
            row = world.run(world.pool.fetchrow("SELECT * FROM auctions WHERE id = $1", self.auction_id))
            m = self.model
            assert (row["state"], row["price_cents"], row["leader_id"], row["ends_at_ms"], row["version"],
                    row["winner_id"], row["closed_by"], row["bids_count"]) == (
                m.state, m.price, m.leader, m.ends_at, m.version, m.winner, m.closed_by, len(m.history))
            if m.leader is not None:
                assert row["leader_max_cents"] == m.leader_max
            history = world.run(world.pool.fetch(
                "SELECT seq, bidder_id, kind, amount_cents, outcome FROM auction_bids WHERE auction_id = $1"
                " ORDER BY seq", self.auction_id))
            assert [tuple(r) for r in history] == m.history  # every accepted bid once, nothing after the close
            won = world.run(world.pool.fetchrow("SELECT * FROM auction_wins WHERE auction_id = $1", self.auction_id))
            assert (won is not None) == (m.winner is not None)
            if won is not None:
                assert (won["winner_id"], won["amount_cents"]) == (m.winner, m.price)

        @invariant()
        def clients_see_the_database(self) -> None:
            view = world.run(auctions.auction_view(world.commerce.auctions, self.auction_id))
            want_state, want_bids = database_view(view)
            self.fold.take(world.run(events_until(
                self.watcher, lambda evs: self._caught_up(evs, view["version"]), EVENTS_WAIT_S)))
            assert (self.fold.state, self.fold.history()) == (
                want_state, [b for b in want_bids if b["seq"] > self.fold_after_seq])
            joined = AuctionFold(self.auction_id)
            joined.take_snapshot(self.last_snapshot())
            assert (joined.state, joined.history()) == (want_state, want_bids[-SNAPSHOT_BIDS:])

        def _caught_up(self, events: list[dict], version: int) -> bool:
            seen = max([e["version"] for e in events if e.get("auction_id") == self.auction_id], default=0)
            return max(seen, self.fold.state.get("version", 0)) >= version

        def teardown(self) -> None:
            for socket in [self.watcher, *self.sockets.values()]:
                world.run(socket.close())

    AuctionMachine.TestCase.settings = settings(
        max_examples=12, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    AuctionMachine.TestCase().runTest()
