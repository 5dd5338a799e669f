"""A Hypothesis state machine of orders against the real database, a serving node and the real print-on-demand
simulator: random orders, payments (paid, declined), the provider's progress, holds, failures, returns,
cancellations, payment-side refunds and disputes, callbacks delivered again (duplicates, older versions, forged),
and creators cashing out margins before a return takes them back; the ledger's invariants are checked after every
step, and a shipped order's margin is credited once."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from pathlib import Path
from typing import Any

import aiohttp
import hypothesis.strategies as st
import pytest
from aiohttp import web
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from livenode import Servers, unique_username
from money import event, refund, signed_event
from podsim import TO_DELIVERED_S, TO_PRODUCTION_S, TO_SHIPPED_S, PodSim
from shop import US_ADDRESS, VARIANT
from standardwebhooks.webhooks import Webhook

from commerce import COMMERCE, Commerce, invariants, payouts, purchases
from commerce.fulfilment import WebhookHeaders
from commerce.merch import products
from commerce.orders import checkout, payments, provider_orders
from commerce.orders.addresses import Address
from livecore.accounts import accounts
from livecore.app import build_app
from livecore.clock import ManualClock
from livecore.config import Settings
from livecore.embedded import free_port
from livecore.http import Problem

SIM_STEPS_S = [3600, TO_PRODUCTION_S, TO_SHIPPED_S, TO_DELIVERED_S]


class World:
    """A serving node on a private event loop (Hypothesis drives it synchronously) and a simulator calling it."""

    def __init__(self, servers: Servers, directory: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock()
        self.http = self.run(self._session())
        self.sim = PodSim(directory, self.http)
        self.sim.start()
        port = free_port()
        node_settings = Settings(
            host="127.0.0.1", port=port, node_id=f"orders-{port}", database_url=servers.database_url,
            redis_url=servers.redis_url, seed_demo=False, data_dir=servers.directory / f"node-{port}",
            fulfilment_url=self.sim.url, fulfilment_webhook_secret=self.sim.secret, payout_cents_min=1,
            order_sweep_s=3600, auction_payment_sweep_ms=3_600_000,
        )
        self.runner = web.AppRunner(build_app(node_settings, self.clock), handle_signals=False)
        self.run(self.runner.setup())
        self.run(web.TCPSite(self.runner, "127.0.0.1", port).start())
        self.commerce: Commerce = self.runner.app[COMMERCE]
        self.secret = self.run(self.commerce.webhook_secrets())[0]

    async def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def new_people(self) -> None:
        self.creator = self.run(self._account())
        self.buyers = [self.run(self._account()) for _ in range(2)]
        self.product_id = self.run(self._product())

    async def _account(self) -> accounts.Account:
        return await accounts.create_account(
            self.commerce.node.pool, username=unique_username("o"), password="x" * 12,
            birth_date=dt.date(1990, 1, 1), region="US", roles=["creator"])

    async def _product(self) -> int:
        from images import design_png

        from commerce.merch import designs

        merch = self.commerce.merch
        checked = designs.check_design(design_png(), "image/png", merch.design_limits)
        design = await designs.store_design(merch.pool, self.creator.id, checked, self.clock.now_ms())
        made, _ = await products.create_product(merch, self.creator, design["id"], "tshirt", "Machine tee", 2500,
                                                [VARIANT], None)
        return made["id"]

    def close(self) -> None:
        self.run(self.runner.cleanup())
        self.run(self.http.close())
        self.sim.stop()
        self.loop.close()


@pytest.fixture(scope="module")
def world(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Any:
    made = World(servers, tmp_path_factory.mktemp("orders-sim"))
    yield made
    made.close()


def test_order_money_invariants_hold_under_random_operations(world: World) -> None:
    class OrderMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            world.new_people()
            self.orders: list[dict[str, Any]] = []

        def pick(self, data: st.DataObject, pool: list[dict[str, Any]]) -> dict[str, Any]:
            return data.draw(st.sampled_from(pool))

        def provider_ref(self, order_id: int) -> str | None:
            return world.run(world.commerce.node.pool.fetchval(
                "SELECT provider_order_id FROM orders WHERE id = $1", order_id))

        @rule(buyer=st.integers(0, 1), quantity=st.integers(1, 3),
              payment=st.sampled_from(["paid", "paid", "paid", "declined", "later"]))
        def place_order(self, buyer: int, quantity: int, payment: str) -> None:
            view, created = world.run(checkout.create_order(
                world.commerce.orders, world.buyers[buyer], [(world.product_id, VARIANT, quantity)],
                Address.model_validate(US_ADDRESS), secrets.token_hex(6)))
            assert created and view["state"] == "pending"
            self.orders.append({**view, "buyer": buyer})
            if payment != "later":
                self.settle(self.orders[-1], payment == "paid")

        def settle(self, order: dict[str, Any], pays: bool) -> None:
            row = world.run(world.commerce.node.pool.fetchrow("SELECT * FROM orders WHERE id = $1", order["id"]))
            kind = "payment_intent.succeeded" if pays else "payment_intent.payment_failed"
            world.run(payments.deliver_local_event(world.commerce, kind, row))

        @precondition(lambda self: self.orders)
        @rule(data=st.data(), pays=st.booleans())
        def pay_later(self, data: st.DataObject, pays: bool) -> None:
            """A payment event for any order: a late success, a decline, or one more for an order long settled."""
            self.settle(self.pick(data, self.orders), pays)

        @rule(seconds=st.sampled_from(SIM_STEPS_S))
        def provider_time_passes(self, seconds: int) -> None:
            world.run(world.sim.advance(seconds))

        # What Hypothesis draws and which rules it may run must not depend on the database or the simulator (it
        # replays a case to shrink it): these rules pick any order and do nothing for one not placed (yet).
        @precondition(lambda self: self.orders)
        @rule(data=st.data(), action=st.sampled_from(["hold", "release", "fail", "return"]))
        def something_happens_to_a_parcel(self, data: st.DataObject, action: str) -> None:
            ref = self.provider_ref(self.pick(data, self.orders)["id"])
            if ref is None:
                return
            status, _ = world.run(world.sim.call("POST", f"/v1/simulate/orders/{ref}/{action}"))
            assert status in (200, 409)

        @precondition(lambda self: self.orders)
        @rule(data=st.data())
        def buyer_cancels(self, data: st.DataObject) -> None:
            order = self.pick(data, self.orders)
            try:
                world.run(provider_orders.cancel_order(world.commerce, world.buyers[order["buyer"]], order["id"]))
            except Problem as problem:
                assert problem.slug == "order-not-cancellable", problem.slug

        @precondition(lambda self: self.orders)
        @rule(data=st.data(), dispute=st.booleans())
        def payment_provider_gives_back(self, data: st.DataObject, dispute: bool) -> None:
            order = self.pick(data, self.orders)
            part = data.draw(st.integers(1, order["total_cents"]))
            ref = order["payment"]["payment_id"]
            obj = ({"id": "dp_" + secrets.token_hex(4), "object": "dispute", "payment_intent": ref, "amount": part}
                   if dispute else refund(ref, part, full=part == order["total_cents"]))
            payload, header = signed_event(event("charge.dispute.created" if dispute else "charge.refunded", obj),
                                           world.secret, world.clock.now_ms() // 1000)
            outcome = world.run(purchases.receive_webhook(world.commerce, payload, header))["outcome"]
            assert outcome in ("order-reversed", "ignored")

        @precondition(lambda self: self.orders)
        @rule(data=st.data(), how=st.sampled_from(["again", "forged"]))
        def a_callback_arrives_again(self, data: st.DataObject, how: str) -> None:
            order = self.pick(data, self.orders)
            index = data.draw(st.integers(0, 1000))  # not sampled_from(callbacks): how many there are is the sim's
            ref = self.provider_ref(order["id"])
            world.run(world.sim.flush_callbacks())  # any still on its way in the background arrives first
            callbacks = world.run(world.sim.callbacks(ref)) if ref is not None else []
            if not callbacks:
                return
            callback = callbacks[index % len(callbacks)]
            headers = dict(callback["headers"])
            if how == "forged":
                headers["webhook-signature"] = Webhook("whsec_" + "c29tZW9uZS1lbHNlcy1zZWNyZXQ=").sign(
                    callback["id"], dt.datetime.now(tz=dt.UTC), callback["body"])
            try:
                answer = world.run(provider_orders.receive_webhook(world.commerce, callback["body"].encode(),
                                                                   WebhookHeaders.model_validate(headers)))
            except Problem as problem:
                assert how == "forged" and problem.slug == "bad-signature"
                return
            assert how == "again" and answer["outcome"] in ("duplicate", "stale", "ignored"), answer

        @rule(amount=st.integers(1, 3000))
        def creator_cashes_out(self, amount: int) -> None:
            try:
                world.run(payouts.request_payout(world.commerce, world.creator, amount, secrets.token_hex(6)))
            except Problem as problem:
                assert problem.slug == "insufficient-earnings", problem.slug

        @invariant()
        def ledger_is_sound(self) -> None:
            broken = world.run(invariants.violations(world.commerce.node.pool))
            assert not broken, broken

        @invariant()
        def margins_were_credited_once(self) -> None:
            twice = world.run(world.commerce.node.pool.fetchval(
                "SELECT count(*) FROM (SELECT details->>'order_id' FROM ledger_transactions"
                " WHERE kind = 'order_margin_released' GROUP BY 1 HAVING count(*) > 1) t"))
            assert twice == 0

    OrderMachine.TestCase.settings = settings(
        max_examples=10, stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    OrderMachine.TestCase().runTest()
