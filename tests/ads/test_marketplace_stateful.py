"""A Hypothesis state machine of offers against the real database and a serving node: random offers, then bursts
of accept / decline / deliver / cancel on one offer, each sent once or several times and all at the same time (a
client's retries racing each other and the other party), with the clock moving past due dates. After every step
the offer's state must be one that some serial order of the burst leads to, and the money must match the states
exactly: the advertiser paid the coins of every accepted or delivered offer and nothing else, escrow holds the
accepted ones, the creator was paid each delivered one once; the ledger's invariants hold."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import secrets
from dataclasses import dataclass
from typing import Any

import aiohttp
import hypothesis.strategies as st
import pytest
from aiohttp import web
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from livenode import Servers, node_settings, unique_username
from marketplace_people import balance, buy_coins, ready_videos

from ads.marketplace import MARKETPLACE, Marketplace, offers
from commerce import invariants
from livecore.accounts import accounts
from livecore.app import build_app
from livecore.clock import ManualClock
from livecore.embedded import free_port
from livecore.http import Problem

FEE_PERCENT = 15
COINS_BOUGHT = 1000
DUE_DAYS = 3
EXPECTED_REFUSALS = {"offer-not-open", "offer-overdue", "offer-not-funded", "offer-not-overdue",
                     "offer-delivered", "video-already-delivered"}


@dataclass
class Served:
    """What buy_coins needs of a node: its URL and a client session."""

    url: str
    http: aiohttp.ClientSession


class World:
    def __init__(self, servers: Servers) -> None:
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock()
        port = free_port()
        self.runner = web.AppRunner(build_app(node_settings(
            servers, port, marketplace_fee_percent=FEE_PERCENT, account_cache_ms=0, token_ttl_s=365 * 86400),
            self.clock), handle_signals=False)
        self.run(self.runner.setup())
        self.run(web.TCPSite(self.runner, "127.0.0.1", port).start())
        self.market: Marketplace = self.runner.app[MARKETPLACE]
        self.served = Served(f"http://127.0.0.1:{port}", self.run(self._session()))

    async def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def new_people(self) -> None:
        pool = self.market.node.pool
        self.creator = self.run(self._account(["viewer", "creator"]))
        self.brand = self.run(self._account(["viewer", "advertiser"]))
        self.run(pool.execute("INSERT INTO marketplace_creators (creator_id, eligible) VALUES ($1, true)",
                              self.creator.id))
        token = self.market.node.tokens.issue(self.brand.id)
        self.run(buy_coins(self.served, token, "coins_1000"))  # type: ignore[arg-type]
        self.videos = self.run(ready_videos(pool, self.creator.id, [(10, 1, 0)] * 4))

    async def _account(self, roles: list[str]) -> accounts.Account:
        return await accounts.create_account(self.market.node.pool, username=unique_username("m"),
                                             password="x" * 12, birth_date=dt.date(1990, 1, 1), region="US",
                                             roles=roles)

    def close(self) -> None:
        self.run(self.served.http.close())
        self.run(self.runner.cleanup())
        self.loop.close()


@pytest.fixture(scope="module")
def world(servers: Servers) -> Any:
    made = World(servers)
    yield made
    made.close()


@dataclass(frozen=True)
class Step:
    action: offers.Action
    video: int | None = None


def next_state(offer: dict[str, Any], step: Step, today: dt.date, coins_left: int,
               used_elsewhere: set[int]) -> tuple[str, int | None] | None:
    """The (state, video) one step leads to taken alone, or None when it is refused."""
    state, video, due = offer["state"], offer["video_id"], dt.date.fromisoformat(offer["due_date"])
    if step.action == "accept":
        if state == "accepted":
            return state, video
        ok = state == "offered" and due >= today and coins_left >= offer["price_cents"]
        return ("accepted", None) if ok else None
    if step.action == "decline":
        return ("declined", None) if state in ("offered", "accepted", "declined") else None
    if step.action == "cancel":
        ok = state in ("offered", "cancelled") or (state == "accepted" and due < today)
        return ("cancelled", None) if ok else None
    if state == "delivered":
        return (state, video) if video == step.video else None
    ok = state == "accepted" and step.video not in used_elsewhere
    return ("delivered", step.video) if ok else None


def serial_outcomes(offer: dict[str, Any], steps: list[Step], today: dt.date, coins_left: int,
                    used_elsewhere: set[int]) -> set[tuple[str, int | None]]:
    """Every (state, video) some order of `steps` leads to."""
    found = set()
    for order in itertools.permutations(steps):
        now = dict(offer)
        for step in order:
            moved = next_state(now, step, today, coins_left, used_elsewhere)
            if moved is not None:
                now["state"], now["video_id"] = moved
        found.add((now["state"], now["video_id"]))
    return found


def test_escrow_moves_money_exactly_once_under_racing_retried_steps(world: World) -> None:
    class OfferMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            world.new_people()
            self.offers: list[dict[str, Any]] = []

        @rule(price_cents=st.integers(1, 700))
        def make_offer(self, price_cents: int) -> None:
            due = world.market.node.today() + dt.timedelta(days=DUE_DAYS)
            made, created = world.run(offers.make_offer(world.market, world.brand, offers.NewOffer(
                world.creator.id, "a brief", price_cents, due, secrets.token_hex(6))))
            assert created and made["state"] == "offered"
            self.offers.append(made)

        @precondition(lambda self: self.offers)
        @rule(data=st.data(), steps=st.lists(st.sampled_from(["accept", "decline", "deliver", "cancel"]),
                                             min_size=1, max_size=4))
        def race(self, data: st.DataObject, steps: list[offers.Action]) -> None:
            index = data.draw(st.integers(0, len(self.offers) - 1))
            burst = [Step(a, data.draw(st.sampled_from(world.videos)) if a == "deliver" else None) for a in steps]
            pool, today = world.market.node.pool, world.market.node.today()
            before = self.offers[index]
            coins_left = world.run(balance(pool, world.brand.id, "coins"))
            used = {o["video_id"] for i, o in enumerate(self.offers) if i != index and o["video_id"]}
            possible = serial_outcomes(before, burst, today, coins_left, used)
            answers = world.run(self._all_at_once(before["id"], burst))
            for answer in answers:
                assert not isinstance(answer, BaseException) or (
                    isinstance(answer, Problem) and answer.slug in EXPECTED_REFUSALS), answer
            after = world.run(offers.get_offer(pool, before["id"], world.brand.id))
            assert (after["state"], after["video_id"]) in possible, (before["state"], burst, after, possible)
            self.offers[index] = after

        async def _all_at_once(self, offer_id: int, burst: list[Step]) -> list[Any]:
            return await asyncio.gather(*[self._take(offer_id, s) for s in burst], return_exceptions=True)

        async def _take(self, offer_id: int, step: Step) -> dict[str, Any]:
            who = world.brand if step.action == "cancel" else world.creator
            return await offers.take_step(world.market, who, offer_id, step.action, step.video)

        @rule(days=st.integers(1, 4))
        def time_passes(self, days: int) -> None:
            world.clock.advance(days * 86400)

        @invariant()
        def money_matches_the_states(self) -> None:
            pool = world.market.node.pool
            paid = [o for o in self.offers if o["state"] in ("accepted", "delivered")]
            coins = world.run(balance(pool, world.brand.id, "coins"))
            assert coins == COINS_BOUGHT - sum(o["price_cents"] for o in paid)  # 1 coin a cent at rate 1
            escrowed = world.run(balance(pool, world.brand.id, "offer_escrow"))
            assert escrowed == sum(2 * o["price_cents"] for o in self.offers if o["state"] == "accepted")
            earned = world.run(balance(pool, world.creator.id, "earnings_withdrawable"))
            delivered = [2 * o["price_cents"] for o in self.offers if o["state"] == "delivered"]
            assert earned == sum(d - d * FEE_PERCENT // 100 for d in delivered)

        @invariant()
        def ledger_is_sound(self) -> None:
            broken = world.run(invariants.violations(world.market.node.pool))
            assert not broken, broken

    OfferMachine.TestCase.settings = settings(
        max_examples=12, stateful_step_count=25, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    OfferMachine.TestCase().runTest()
