"""The simulator's HTTP API, shaped like a print-on-demand provider's (Printful's v1, in cents):

- `POST /v1/shipping/rates {recipient, items}`: the rates for a parcel
- `POST /v1/orders {external_id, recipient, items, shipping?, confirm?}`: an order (the same one again for a known
  external_id); `GET /v1/orders/{id}`; `POST /v1/orders/{id}/confirm`; `POST /v1/orders/{id}/cancel`
- `PUT /v1/webhook {url, paused?}` / `GET /v1/webhook`: where the signed callbacks go
- the outside world, for demos and tests: `POST /v1/simulate/orders/{id}/{hold|release|fail|return}`,
  `POST /v1/simulate/advance {seconds}` (manual clock only), `POST /v1/simulate/deliver`,
  `GET /v1/simulate/orders/{id}/webhooks` (each callback signed as if sent now, to replay)

Errors are `{"error": {"code", "message"}}` with a 4xx status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from fulfilment_sim import lifecycle
from fulfilment_sim.store import Order
from fulfilment_sim.world import SimSettings, World, shipping_rate

log = logging.getLogger("fulfilment_sim")

WORLD = web.AppKey("world", World)
ITEMS_MAX = 100
QUANTITY_MAX = 1000
RECIPIENT_FIELDS = ("name", "address1", "city", "country_code", "zip")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@web.middleware
async def _errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                  ) -> web.StreamResponse:
    try:
        key = request.app[WORLD].settings.api_key
        if key and request.path != "/healthz" and request.headers.get("Authorization") != f"Bearer {key}":
            raise ApiError(401, "unauthorized", "send Authorization: Bearer <api key>")
        return await handler(request)
    except ApiError as exc:
        return web.json_response({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)
    except lifecycle.NotAllowed as exc:
        return web.json_response({"error": {"code": "not-allowed", "message": str(exc)}}, status=409)


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise ApiError(400, "malformed-json", f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "malformed-json", "the body must be a JSON object")
    return body


def _recipient(body: dict[str, Any]) -> dict[str, Any]:
    recipient = body.get("recipient")
    if not isinstance(recipient, dict):
        raise ApiError(400, "invalid-recipient", "recipient must be an object")
    missing = [f for f in RECIPIENT_FIELDS if not isinstance(recipient.get(f), str) or not recipient[f].strip()]
    if missing:
        raise ApiError(400, "invalid-recipient", f"recipient needs {', '.join(missing)}")
    return recipient


def _items(world: World, body: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """The items as {variant_id, quantity} and what they cost to make."""
    items = body.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= ITEMS_MAX:
        raise ApiError(400, "invalid-items", f"items must be a list of 1 to {ITEMS_MAX}")
    kept, cost = [], 0
    for item in items:
        variant = item.get("variant_id") if isinstance(item, dict) else None
        quantity = item.get("quantity") if isinstance(item, dict) else None
        if variant not in world.catalogue:
            raise ApiError(400, "unknown-variant", f"no variant {variant!r} in the catalogue")
        if not isinstance(quantity, int) or not 1 <= quantity <= QUANTITY_MAX:
            raise ApiError(400, "invalid-items", f"quantity must be 1 to {QUANTITY_MAX}")
        kept.append({"variant_id": variant, "quantity": quantity})
        cost += world.catalogue[variant] * quantity
    return kept, cost


async def shipping_rates(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    body = await _json(request)
    recipient = body.get("recipient")
    if not isinstance(recipient, dict) or not isinstance(recipient.get("country_code"), str):
        raise ApiError(400, "invalid-recipient", "recipient.country_code is required")
    items, _ = _items(world, body)
    quantity = sum(i["quantity"] for i in items)
    return web.json_response({"rates": [shipping_rate(world.settings.origin_country, recipient["country_code"],
                                                      quantity)]})


async def create_order(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    body = await _json(request)
    external_id = body.get("external_id")
    if not isinstance(external_id, str) or not 1 <= len(external_id) <= 64:
        raise ApiError(400, "invalid-external-id", "external_id must be a string of 1 to 64 characters")
    order = world.store.by_external_id(external_id)
    status = 200
    if order is None:
        recipient = _recipient(body)
        items, cost = _items(world, body)
        quantity = sum(i["quantity"] for i in items)
        rate = shipping_rate(world.settings.origin_country, recipient["country_code"], quantity)
        order = world.store.add_order(external_id, recipient, items, cost, rate["rate_cents"], rate["id"],
                                      world.clock.now_ms())
        status = 201
    if body.get("confirm") is True and lifecycle.confirm(order, world.clock.now_ms(), world.delays):
        world.record(order)
        _deliver_soon(request.app)
    return web.json_response(order.public(), status=status)


def _order(request: web.Request) -> Order:
    order = request.app[WORLD].store.get(request.match_info["id"])
    if order is None:
        raise ApiError(404, "not-found", f"there is no order {request.match_info['id']!r}")
    return order


async def get_order(request: web.Request) -> web.Response:
    return web.json_response(_order(request).public())


async def confirm_order(request: web.Request) -> web.Response:
    world, order = request.app[WORLD], _order(request)
    if lifecycle.confirm(order, world.clock.now_ms(), world.delays):
        world.record(order)
        _deliver_soon(request.app)
    return web.json_response(order.public())


async def cancel_order(request: web.Request) -> web.Response:
    world, order = request.app[WORLD], _order(request)
    if order.status != "cancelled":
        lifecycle.cancel(order, world.clock.now_ms(), world.delays, "cancelled at the shop's request")
        world.record(order)
        _deliver_soon(request.app)
    return web.json_response(order.public())


_SIMULATED = {
    "hold": lambda o, now, d: lifecycle.hold(o, now, d, "the address needs checking"),
    "release": lifecycle.release,
    "fail": lambda o, now, d: lifecycle.fail(o, now, d, "a misprint was caught at quality control"),
    "return": lambda o, now, d: lifecycle.give_back(o, now, d, "the parcel came back to the sender"),
}


async def simulate(request: web.Request) -> web.Response:
    """Something happens to an order out in the world: it is held, released, fails or comes back."""
    world, order = request.app[WORLD], _order(request)
    action = _SIMULATED.get(request.match_info["action"])
    if action is None:
        raise ApiError(404, "not-found", f"no simulated action {request.match_info['action']!r}")
    action(order, world.clock.now_ms(), world.delays)
    world.record(order)
    await world.callbacks.deliver()
    return web.json_response(order.public())


async def advance(request: web.Request) -> web.Response:
    """Move the manual clock on, take every step that became due and deliver the callbacks before answering."""
    world = request.app[WORLD]
    seconds = (await _json(request)).get("seconds")
    if not isinstance(seconds, int) or seconds < 0:
        raise ApiError(400, "invalid-seconds", "seconds must be a whole number, at least 0")
    world.clock.advance(seconds)
    world.clock.save()
    steps = world.run_due_steps()
    delivered = await world.callbacks.deliver(everything=True)
    return web.json_response({"now_ms": world.clock.now_ms(), "steps": steps, "delivered": delivered})


async def deliver(request: web.Request) -> web.Response:
    return web.json_response({"delivered": await request.app[WORLD].callbacks.deliver(everything=True)})


async def order_webhooks(request: web.Request) -> web.Response:
    world, order = request.app[WORLD], _order(request)
    rows = world.store.webhooks_of(order.n)
    return web.json_response({"webhooks": [
        {"id": r["msg_id"], "type": r["type"], "seq": r["seq"], "body": r["body"],
         "delivered": r["delivered_ms"] is not None, "attempts": r["attempts"],
         "headers": world.callbacks.signed_headers(r["msg_id"], r["body"])} for r in rows]})


async def put_webhook(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    body = await _json(request)
    url = body.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ApiError(400, "invalid-url", "url must be an http(s) URL")
    world.store.set_meta("webhook_url", url)
    world.store.set_meta("webhook_paused", "1" if body.get("paused") is True else "0")
    _deliver_soon(request.app)
    return await get_webhook(request)


async def get_webhook(request: web.Request) -> web.Response:
    store = request.app[WORLD].store
    return web.json_response({"url": store.meta("webhook_url"), "paused": store.meta("webhook_paused") == "1"})


async def health(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    return web.json_response({"status": "ok", "now_ms": world.clock.now_ms(),
                              "manual_clock": world.settings.manual_clock})


def _deliver_soon(app: web.Application) -> None:
    """Send new callbacks right away instead of at the next tick (the manual clock has no ticks)."""
    task = asyncio.get_running_loop().create_task(app[WORLD].callbacks.deliver())
    app[_PENDING].add(task)
    task.add_done_callback(app[_PENDING].discard)


_PENDING = web.AppKey("pending_deliveries", set)


async def _ticks(world: World) -> None:
    """Take due steps and deliver due callbacks every tick (the manual clock moves only when asked)."""
    parent = os.getppid()
    while True:
        await asyncio.sleep(world.settings.tick_ms / 1000)
        if world.settings.exit_with_parent and os.getppid() != parent:
            log.warning("the process that started the simulator is gone; stopping")
            os.kill(os.getpid(), signal.SIGTERM)  # run_app stops cleanly on it
            return
        try:
            if not world.settings.manual_clock:
                world.run_due_steps()
            await world.callbacks.deliver()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("a simulator tick failed; trying again next tick")


def _context(settings: SimSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        world = World(settings)
        app[WORLD] = world
        app[_PENDING] = set()
        await world.callbacks.start()
        ticker = asyncio.create_task(_ticks(world))
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            for task in list(app[_PENDING]):
                task.cancel()
            await world.callbacks.stop()
            world.clock.save()
            world.store.close()

    return context


def build_app(settings: SimSettings) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=256 * 1024)
    app.cleanup_ctx.append(_context(settings))
    app.router.add_get("/healthz", health)
    app.router.add_post("/v1/shipping/rates", shipping_rates)
    app.router.add_post("/v1/orders", create_order)
    app.router.add_get("/v1/orders/{id}", get_order)
    app.router.add_post("/v1/orders/{id}/confirm", confirm_order)
    app.router.add_post("/v1/orders/{id}/cancel", cancel_order)
    app.router.add_put("/v1/webhook", put_webhook)
    app.router.add_get("/v1/webhook", get_webhook)
    app.router.add_post("/v1/simulate/advance", advance)
    app.router.add_post("/v1/simulate/deliver", deliver)
    app.router.add_post("/v1/simulate/orders/{id}/{action}", simulate)
    app.router.add_get("/v1/simulate/orders/{id}/webhooks", order_webhooks)
    return app
