"""The order flow with PostgreSQL or Valkey out from under it (real processes of the test's own, stopped or killed
with -9, so the session's servers stay up).

A fulfilment callback that reaches a node without its database is answered 503 `livecore:unavailable`, never a 2xx,
so the provider keeps it and delivers it again; once PostgreSQL is back it is applied once (the margin released
once, the journal balanced). A checkout and a payment webhook without the database are a 503 problem+json too, and
their retries with the same key or event make one order and one payment. Without Valkey the order flow needs no
room events: it goes on, and nothing it accepts is lost.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from livenode import NodeFactory, RunningNode, Servers
from money import assert_invariants, commerce_of, key
from podsim import TO_PRODUCTION_S, TO_SHIPPED_S, PodSim
from shop import US_ADDRESS, VARIANT, get, order, pay, postings, product, provider_order_id, withdrawable_diamonds

from commerce import webhooks
from commerce.providers import local_intent_event
from livecore.embedded import EmbeddedPostgres, EmbeddedValkey

PROBLEM = "application/problem+json"
RETRIES_MAX = 200  # tries of a request after PostgreSQL is back, while the node's pool reconnects
RETRY_PAUSE_S = 0.1
MARGIN_DIAMONDS = (2500 - 1295 - (2500 * 10 // 100 + 30)) * 2  # shop.PRICE_CENTS less base cost and fees, in diamonds


async def _answer(node: RunningNode, method: str, path: str, token: str | None = None, json_body: Any = None,
                  data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str, Any, str | None]:
    """(status, content type, body, Retry-After) of one request."""
    sent = {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
    async with node.http.request(method, node.url + path, json=json_body, data=data, headers=sent) as response:
        return (response.status, response.content_type, await response.json(content_type=None),
                response.headers.get("Retry-After"))


def _assert_database_unavailable(answer: tuple[int, str, Any, str | None]) -> None:
    status, content_type, body, retry_after = answer
    assert status == 503 and content_type == PROBLEM, answer
    assert body["type"] == "livecore:unavailable" and body["unavailable"] == "database", body
    assert retry_after is not None and int(retry_after) >= 1, answer


async def _until_answered(send: Any) -> tuple[int, str, Any, str | None]:
    """`send()` again while the node answers 5xx (its pool reconnecting to a restarted PostgreSQL)."""
    for _ in range(RETRIES_MAX):
        answer = await send()
        if answer[0] < 500:
            return answer
        _assert_database_unavailable(answer)
        await asyncio.sleep(RETRY_PAUSE_S)  # the node's pool reconnecting, not a deadline
    raise AssertionError(f"still {answer} after PostgreSQL came back")


async def _shop_on(node_factory: NodeFactory, servers: Servers, podsim: PodSim) -> tuple[RunningNode, dict, dict,
                                                                                          dict]:
    node = await node_factory(on=servers, fulfilment_url=podsim.url, fulfilment_webhook_secret=podsim.secret)
    creator, buyer = await node.signup(), await node.signup()
    return node, creator, buyer, await product(node, creator["token"])


async def _payment_webhook(node: RunningNode, pending: dict[str, Any]) -> Any:
    """A function that delivers the payment provider's signed `payment_intent.succeeded` for `pending` over HTTP
    (the same event each time, as a provider delivering it again)."""
    secret = (await commerce_of(node).webhook_secrets())[0]
    paid_event = local_intent_event("payment_intent.succeeded", pending["payment"]["payment_id"],
                                    pending["total_cents"], pending["currency"], {"order_id": str(pending["id"])},
                                    node.node.clock.now_ms() // 1000)
    payload = webhooks.encode_event(paid_event)

    def webhook() -> Any:
        header = webhooks.sign(payload, secret, node.node.clock.now_ms())
        return _answer(node, "POST", "/api/payments/webhook", data=payload, headers={"Stripe-Signature": header})
    return webhook


async def test_fulfilment_callbacks_while_postgresql_is_stopped_are_retried_and_applied_once(
        own_postgres: EmbeddedPostgres, node_factory: NodeFactory, servers: Servers, podsim: PodSim) -> None:
    own = Servers(own_postgres.url, servers.redis_url, servers.directory)
    node, creator, buyer, made = await _shop_on(node_factory, own, podsim)
    placed = await order(node, buyer["token"], made["id"])
    await pay(node, buyer["token"], placed["id"])
    ref = await provider_order_id(node, placed["id"])
    await podsim.flush_callbacks()  # the confirmation's callback, sent in the background, is in before the stop
    earned_before = await withdrawable_diamonds(node, creator["id"])

    await asyncio.to_thread(own_postgres.stop)
    try:
        moved = await podsim.advance(TO_PRODUCTION_S + TO_SHIPPED_S)  # made and shipped; both callbacks sent now
        assert moved["steps"] == 2 and moved["delivered"] == 0, moved
        waiting = [c for c in await podsim.callbacks(ref) if not c["delivered"]]
        assert [c["type"] for c in waiting] == ["order.in_production", "order.shipped"], waiting
        assert all(c["attempts"] >= 1 for c in waiting), "the node refused them, so the provider keeps them"
        # What the provider got: the same callback by hand shows the answer (a 2xx here would have lost it).
        shipped = waiting[1]
        _assert_database_unavailable(await _answer(node, "POST", "/api/fulfilment/webhook",
                                                   data=shipped["body"].encode(), headers=shipped["headers"]))
    finally:
        await asyncio.to_thread(own_postgres.start)

    # Back: once the node can read the order again, the provider's next delivery is taken.
    await _until_answered(lambda: _answer(node, "GET", f"/api/orders/{placed['id']}", buyer["token"]))
    await podsim.flush_callbacks()
    assert not [c for c in await podsim.callbacks(ref) if not c["delivered"]], "every callback was taken"
    found = await get(node, buyer["token"], placed["id"])
    assert found["state"] == "shipped" and found["tracking"]["number"], found
    assert [h["state"] for h in found["history"]][-2:] == ["in_production", "shipped"]
    assert await postings(node, placed["id"]) == {"order_paid": 1, "order_margin_released": 1}
    assert await withdrawable_diamonds(node, creator["id"]) == earned_before + MARGIN_DIAMONDS
    refused_then_taken = await node.node.pool.fetch(
        "SELECT webhook_id, outcome FROM fulfilment_events WHERE webhook_id = ANY($1::text[])",
        [c["id"] for c in waiting])
    assert sorted(r["outcome"] for r in refused_then_taken) == ["in_production", "shipped"]

    # The callback refused during the outage, delivered once more, is a duplicate: nothing moves twice.
    status, _, again, _ = await _answer(node, "POST", "/api/fulfilment/webhook", data=shipped["body"].encode(),
                                        headers=(await podsim.callbacks(ref))[-1]["headers"])
    assert status == 200 and again["outcome"] == "duplicate", again
    assert await withdrawable_diamonds(node, creator["id"]) == earned_before + MARGIN_DIAMONDS
    await assert_invariants(node)


async def test_checkout_and_payment_webhook_while_postgresql_is_stopped_answer_503_and_make_one_order(
        own_postgres: EmbeddedPostgres, node_factory: NodeFactory, servers: Servers, podsim: PodSim) -> None:
    own = Servers(own_postgres.url, servers.redis_url, servers.directory)
    node, _, buyer, made = await _shop_on(node_factory, own, podsim)
    pending = await order(node, buyer["token"], made["id"])
    webhook = await _payment_webhook(node, pending)
    checkout = {"items": [{"product_id": made["id"], "variant_id": VARIANT, "quantity": 1}],
                "shipping_address": US_ADDRESS, "idempotency_key": key()}

    def place() -> Any:
        return _answer(node, "POST", "/api/orders", buyer["token"], checkout)

    await asyncio.to_thread(own_postgres.stop)
    try:
        _assert_database_unavailable(await place())
        _assert_database_unavailable(await webhook())
    finally:
        await asyncio.to_thread(own_postgres.start)

    status, _, placed, _ = await _until_answered(place)
    assert status == 201 and placed["state"] == "pending", placed
    status, _, again, _ = await place()
    assert status in (200, 201) and again["id"] == placed["id"], again  # the same key is the same order
    assert await node.node.pool.fetchval("SELECT count(*) FROM orders WHERE buyer_id = $1", buyer["id"]) == 2

    status, _, received, _ = await _until_answered(webhook)
    assert status == 200, received
    status, _, repeated, _ = await webhook()  # the provider delivering it once more
    assert status == 200, repeated
    assert (await get(node, buyer["token"], pending["id"]))["state"] == "paid"
    assert await postings(node, pending["id"]) == {"order_paid": 1}, "the payment was applied once"
    assert await postings(node, placed["id"]) == {}, "the order placed after the outage is not paid yet"
    await assert_invariants(node)


async def test_checkout_payment_and_callbacks_go_on_while_valkey_is_dead(
        own_valkey: EmbeddedValkey, node_factory: NodeFactory, servers: Servers, podsim: PodSim) -> None:
    """Orders publish no room events: a dead bus must neither fail them nor lose what they accepted."""
    own = Servers(servers.database_url, own_valkey.url, servers.directory)
    node, creator, buyer, made = await _shop_on(node_factory, own, podsim)
    earned_before = await withdrawable_diamonds(node, creator["id"])
    assert own_valkey.process is not None
    own_valkey.process.kill()  # -9: no goodbye
    own_valkey.process.wait()
    try:
        placed = await order(node, buyer["token"], made["id"])
        webhook = await _payment_webhook(node, placed)
        for _ in range(2):  # delivered, then again: applied once
            status, _, received, _ = await webhook()
            assert status == 200, received
        assert (await get(node, buyer["token"], placed["id"]))["state"] == "paid"
        ref = await provider_order_id(node, placed["id"])
        await podsim.flush_callbacks()
        await podsim.advance(TO_PRODUCTION_S + TO_SHIPPED_S)
        assert not [c for c in await podsim.callbacks(ref) if not c["delivered"]], "every callback was taken"
        assert (await get(node, buyer["token"], placed["id"]))["state"] == "shipped"
    finally:
        own_valkey.start()
    assert await postings(node, placed["id"]) == {"order_paid": 1, "order_margin_released": 1}
    assert await withdrawable_diamonds(node, creator["id"]) == earned_before + MARGIN_DIAMONDS
    assert json.loads((await podsim.callbacks(ref))[-1]["body"])["type"] == "order.shipped"
    await assert_invariants(node)
