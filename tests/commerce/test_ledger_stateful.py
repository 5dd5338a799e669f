"""A Hypothesis state machine against the real database: random purchases, webhook deliveries (duplicated,
reordered, forged, stale), gifts, refunds, disputes, payouts and failed payouts; the ledger's invariants are
checked after every step."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from typing import Any

import hypothesis.strategies as st
import pytest
from aiohttp import web
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from livenode import LIVE_FOR_THE_TEST_MS, Servers, unique_username
from money import dispute, event, intent, refund, signed_event

from commerce import COMMERCE, Commerce, gifts, invariants, payouts, purchases
from livecore.accounts import accounts
from livecore.app import build_app
from livecore.clock import ManualClock
from livecore.config import Settings
from livecore.embedded import free_port
from livecore.http import Problem
from livecore.streams import streams

GIFTS = ["rose", "heart", "doughnut", "bouquet", "crown"]
PACKAGES = ["coins_100", "coins_500", "coins_1000"]


class World:
    """One node on a private event loop (Hypothesis drives it synchronously), its viewers, creators, streams."""

    def __init__(self, servers: Servers) -> None:
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock()
        port = free_port()
        settings_ = Settings(
            host="127.0.0.1", port=port, node_id=f"stateful-{port}", database_url=servers.database_url,
            redis_url=servers.redis_url, seed_demo=False, data_dir=servers.directory / f"node-{port}",
            purchases_per_hour_max=10_000, earnings_hold_s=60, payout_cents_min=1, gift_combo_sweep_ms=3_600_000,
        )
        self.runner = web.AppRunner(build_app(settings_, self.clock), handle_signals=False)
        self.run(self.runner.setup())
        self.commerce: Commerce = self.runner.app[COMMERCE]
        self.secret = self.run(self.commerce.webhook_secrets())[0]

    def new_people(self) -> None:
        """Fresh viewers, creators and streams for each example, so no example depends on another's state."""
        self.viewers = [self.run(self._account()) for _ in range(3)]
        self.creators = [self.run(self._account()) for _ in range(2)]
        self.streams = [self.run(self._live_stream(c.id)) for c in self.creators]

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    async def _live_stream(self, creator_id: int) -> int:
        pool = self.commerce.node.pool
        stream = await streams.create_stream(pool, creator_id, "stateful", LIVE_FOR_THE_TEST_MS)
        assert await streams.mark_live(pool, stream.id, LIVE_FOR_THE_TEST_MS)
        return stream.id

    async def _account(self) -> accounts.Account:
        return await accounts.create_account(
            self.commerce.node.pool, username=unique_username("s"), password="x" * 12,
            birth_date=dt.date(1990, 1, 1), region="US")

    def close(self) -> None:
        self.run(self.runner.cleanup())
        self.loop.close()


@pytest.fixture(scope="module")
def world(servers: Servers) -> Any:
    made = World(servers)
    yield made
    made.close()


def test_ledger_invariants_hold_under_random_operations(world: World) -> None:
    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            world.new_people()
            self.purchases: list[dict[str, Any]] = []
            self.sent: list[tuple[bytes, str]] = []  # signed deliveries, for duplicates and reordering
            self.gift_keys: list[tuple[int, str]] = []

        def deliver(self, payload: bytes, header: str) -> str:
            try:
                return world.run(purchases.receive_webhook(world.commerce, payload, header))["outcome"]
            except Problem as problem:
                return problem.slug

        def signed(self, evt: dict[str, Any], age_s: int = 0) -> tuple[bytes, str]:
            return signed_event(evt, world.secret, world.clock.now_ms() // 1000 - age_s)

        @rule(viewer=st.integers(0, 2), package=st.sampled_from(PACKAGES))
        def buy(self, viewer: int, package: str) -> None:
            try:
                view = world.run(purchases.create_purchase(world.commerce, world.viewers[viewer], package,
                                                           secrets.token_hex(6)))
            except Problem as problem:
                # A refund or dispute that took back more coins than the wallet held froze it: no more buying.
                assert problem.slug == "wallet-frozen", problem.slug
                return
            self.purchases.append(view)

        @precondition(lambda self: self.purchases)
        @rule(data=st.data(), kind=st.sampled_from(["succeeded", "failed", "refunded", "disputed"]))
        def provider_event(self, data: st.DataObject, kind: str) -> None:
            purchase = data.draw(st.sampled_from(self.purchases))
            ref, amount = purchase["payment_id"], purchase["amount_cents"]
            part = data.draw(st.integers(1, amount))  # refunds and disputes may give back part of it
            obj = {"succeeded": intent(ref, amount), "failed": {**intent(ref, amount), "status": "failed"},
                   "refunded": refund(ref, part, full=part == amount), "disputed": dispute(ref, part)}[kind]
            kinds = {"succeeded": "payment_intent.succeeded", "failed": "payment_intent.payment_failed",
                     "refunded": "charge.refunded", "disputed": "charge.dispute.created"}
            delivery = self.signed(event(kinds[kind], obj))
            self.sent.append(delivery)
            assert self.deliver(*delivery) in ("credited", "reversed", "failed", "ignored")

        @precondition(lambda self: self.sent)
        @rule(data=st.data())
        def redeliver(self, data: st.DataObject) -> None:
            payload, header = data.draw(st.sampled_from(self.sent))
            assert self.deliver(payload, header) in ("duplicate", "stale-signature")

        @precondition(lambda self: self.purchases)
        @rule(data=st.data(), how=st.sampled_from(["forged", "stale", "tampered"]))
        def bad_webhook(self, data: st.DataObject, how: str) -> None:
            purchase = data.draw(st.sampled_from(self.purchases))
            evt = event("payment_intent.succeeded", intent(purchase["payment_id"], purchase["amount_cents"]))
            payload, header = self.signed(evt, age_s=400 if how == "stale" else 0)
            if how == "forged":
                payload, header = signed_event(evt, "whsec_forged", world.clock.now_ms() // 1000)
            if how == "tampered":
                payload = payload.replace(b'"amount"', b'"amount" ', 1)
            assert self.deliver(payload, header) in ("bad-signature", "stale-signature")

        @rule(viewer=st.integers(0, 2), stream=st.integers(0, 1), gift=st.sampled_from(GIFTS),
              count=st.integers(1, 5), retry=st.booleans())
        def gift(self, viewer: int, stream: int, gift: str, count: int, retry: bool) -> None:
            key = secrets.token_hex(6)
            if retry and self.gift_keys:
                viewer, key = self.gift_keys[-1]
            try:
                world.run(gifts.send_gift(world.commerce, world.viewers[viewer], world.streams[stream], gift, count,
                                          key))
                self.gift_keys.append((viewer, key))
            except Problem as problem:
                assert problem.slug in ("insufficient-funds", "wallet-frozen"), problem.slug

        @rule(sends=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 1), st.sampled_from(GIFTS),
                                       st.integers(1, 5), st.booleans()), min_size=2, max_size=8))
        def gift_burst(self, sends: list[tuple[int, int, str, int, bool]]) -> None:
            """Gifts sent at once are committed in one batch, each with its own outcome; a key repeated inside
            the burst gets the first result."""
            keyed = []
            for viewer, stream, gift, count, repeat in sends:
                if repeat and keyed:
                    viewer, key = keyed[-1][0], keyed[-1][4]
                else:
                    key = secrets.token_hex(6)
                keyed.append((viewer, stream, gift, count, key))

            async def burst() -> list[Any]:
                return await asyncio.gather(*[
                    gifts.send_gift(world.commerce, world.viewers[v], world.streams[s], g, c, k)
                    for v, s, g, c, k in keyed
                ], return_exceptions=True)

            first_result: dict[tuple[int, str], int] = {}
            for (viewer, _, _, _, key), result in zip(keyed, world.run(burst()), strict=True):
                if isinstance(result, Problem):
                    assert result.slug in ("insufficient-funds", "wallet-frozen"), result.slug
                    continue
                assert isinstance(result, dict), result
                seen = first_result.setdefault((viewer, key), result["transaction_id"])
                assert seen == result["transaction_id"], "one key made two transactions"
                self.gift_keys.append((viewer, key))

        @rule(creator=st.integers(0, 1), amount=st.integers(1, 400), fails=st.booleans())
        def payout(self, creator: int, amount: int, fails: bool) -> None:
            account = world.creators[creator]
            failing = world.commerce.payouts.failing  # type: ignore[attr-defined]
            (failing.add if fails else failing.discard)(account.id)
            try:
                view = world.run(payouts.request_payout(world.commerce, account, amount, secrets.token_hex(6)))
                assert view["state"] == ("failed" if fails else "paid")
            except Problem as problem:
                # A creator who bought coins is frozen like any buyer after a refund or dispute took back more
                # than their wallet held; a frozen account cannot cash out.
                assert problem.slug in ("insufficient-earnings", "wallet-frozen"), problem.slug

        @rule(seconds=st.sampled_from([1, 30, 61, 300]))
        def time_passes(self, seconds: int) -> None:
            world.clock.advance(seconds)

        @invariant()
        def ledger_is_sound(self) -> None:
            broken = world.run(invariants.violations(world.commerce.node.pool))
            assert not broken, broken

    LedgerMachine.TestCase.settings = settings(
        max_examples=15, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    LedgerMachine.TestCase().runTest()
