"""The print-on-demand simulator on its own: its catalogue is the shop's, its lifecycle on a manual clock, holds,
failures (asked for and random), cancellations and returns where they are allowed, its API key, and callbacks that
are signed per Standard Webhooks and delivered again when the receiver was away."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from commerce.merch.catalogue import load
from fulfilment_sim import SimSettings, build_app
from fulfilment_sim.world import load_catalogue, new_secret
from livecore.embedded import free_port

RECIPIENT = {"name": "A", "address1": "1 Main St", "city": "Springfield", "country_code": "US", "zip": "62701"}
ITEMS = [{"variant_id": "tshirt-m-black", "quantity": 2}]
DAY_S = 24 * 3600

Sim = Callable[..., Awaitable[tuple[str, SimSettings]]]


class Receiver:
    """The shop's end of the callbacks: verifies each, keeps them, and can be told to fail."""

    def __init__(self, secret: str) -> None:
        self.webhook = Webhook(secret)
        self.received: list[dict[str, Any]] = []
        self.failing = False

    async def handle(self, request: web.Request) -> web.Response:
        if self.failing:
            return web.Response(status=503)
        body = await request.read()
        self.received.append(self.webhook.verify(body, dict(request.headers)))
        return web.json_response({"ok": True})

    def statuses(self) -> list[str]:
        return [e["data"]["order"]["status"] for e in self.received]


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[Sim]:
    runners: list[web.AppRunner] = []

    async def start(**overrides: Any) -> tuple[str, SimSettings]:
        settings = SimSettings(data_dir=tmp_path / "sim", manual_clock=True, **overrides)
        runner = web.AppRunner(build_app(settings))
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
        return f"http://127.0.0.1:{port}", settings

    yield start
    for runner in runners:
        await runner.cleanup()


async def _receiver(secret: str) -> tuple[Receiver, str, web.AppRunner]:
    receiver = Receiver(secret)
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return receiver, f"http://127.0.0.1:{port}/hook", runner


async def _call(http: aiohttp.ClientSession, method: str, url: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with http.request(method, url, json=body, headers=headers) as response:
        return response.status, await response.json()


def test_the_simulator_charges_the_shops_base_costs() -> None:
    shop = {v.id: v.base_cost_cents for item in load().values() for v in item.variants}
    assert load_catalogue() == shop


async def test_an_order_goes_through_the_lifecycle_with_signed_callbacks(sim: Sim, http) -> None:  # type: ignore
    secret = new_secret()
    url, _ = await sim(webhook_secret=secret)
    receiver, hook, runner = await _receiver(secret)
    try:
        assert (await _call(http, "PUT", f"{url}/v1/webhook", {"url": hook}))[0] == 200
        status, made = await _call(http, "POST", f"{url}/v1/orders", {"external_id": "shop-1", "recipient": RECIPIENT,
                                                                       "items": ITEMS})
        assert status == 201 and made["status"] == "draft" and made["costs"]["items_cents"] == 2 * 1295
        status, again = await _call(http, "POST", f"{url}/v1/orders", {"external_id": "shop-1", "confirm": True})
        assert status == 200 and again["id"] == made["id"] and again["status"] == "pending"
        await _call(http, "POST", f"{url}/v1/simulate/advance", {"seconds": 2 * 3600})
        status, held = await _call(http, "POST", f"{url}/v1/simulate/orders/{made['id']}/hold")
        assert held["status"] == "on_hold"
        advanced = (await _call(http, "POST", f"{url}/v1/simulate/advance", {"seconds": 10 * DAY_S}))[1]
        assert advanced["steps"] == 0, "an order on hold does not move"
        await _call(http, "POST", f"{url}/v1/simulate/orders/{made['id']}/release")
        await _call(http, "POST", f"{url}/v1/simulate/advance", {"seconds": 10 * DAY_S})
        status, done = await _call(http, "GET", f"{url}/v1/orders/{made['id']}")
        assert done["status"] == "delivered" and done["tracking"]["number"]
        assert receiver.statuses() == ["pending", "in_production", "on_hold", "in_production", "shipped",
                                       "delivered"]
        assert [e["data"]["order"]["seq"] for e in receiver.received] == [2, 3, 4, 5, 6, 7]
        status, refused = await _call(http, "POST", f"{url}/v1/orders/{made['id']}/cancel")
        assert status == 409 and refused["error"]["code"] == "not-allowed"
        status, back = await _call(http, "POST", f"{url}/v1/simulate/orders/{made['id']}/return")
        assert back["status"] == "returned" and receiver.statuses()[-1] == "returned"
    finally:
        await runner.cleanup()


async def test_random_failures_an_api_key_and_callbacks_delivered_again(sim: Sim, http) -> None:  # type: ignore
    secret = new_secret()
    url, _ = await sim(webhook_secret=secret, failure_percent=100, api_key="sim-key")
    auth = {"Authorization": "Bearer sim-key"}
    receiver, hook, runner = await _receiver(secret)
    try:
        status, problem = await _call(http, "PUT", f"{url}/v1/webhook", {"url": hook})
        assert status == 401 and problem["error"]["code"] == "unauthorized"
        await _call(http, "PUT", f"{url}/v1/webhook", {"url": hook}, auth)
        receiver.failing = True
        status, made = await _call(http, "POST", f"{url}/v1/orders", {
            "external_id": "shop-2", "recipient": RECIPIENT, "items": ITEMS, "confirm": True}, auth)
        assert status == 201
        await _call(http, "POST", f"{url}/v1/simulate/advance", {"seconds": 3 * 3600}, auth)
        status, failed = await _call(http, "GET", f"{url}/v1/orders/{made['id']}", None, auth)
        assert failed["status"] == "failed" and failed["reason"]
        assert receiver.received == []
        receiver.failing = False
        status, delivered = await _call(http, "POST", f"{url}/v1/simulate/deliver", None, auth)
        assert delivered["delivered"] == 2 and receiver.statuses() == ["pending", "failed"]
        status, bad = await _call(http, "POST", f"{url}/v1/orders", {
            "external_id": "shop-3", "recipient": RECIPIENT, "items": [{"variant_id": "nope", "quantity": 1}]}, auth)
        assert status == 400 and bad["error"]["code"] == "unknown-variant"
    finally:
        await runner.cleanup()
