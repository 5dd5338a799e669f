"""Gifts over HTTP and the room WebSocket: one journal transaction each, must-deliver events, combos, limits."""

from __future__ import annotations

import asyncio

from money import api, assert_invariants, buy_coins, coins, commerce_of, key
from roomclient import events_until, send

from commerce import gifts
from livecore.clock import ManualClock


async def _room(node):  # type: ignore[no-untyped-def]
    creator = await node.signup()
    stream = await node.create_stream(creator["token"])
    viewer = await node.signup()
    return creator, stream, viewer


async def test_a_gift_moves_coins_to_the_creator_and_the_room_sees_it(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = await node_factory(clock=ManualClock())
    creator, stream, viewer = await _room(node)
    await buy_coins(node, viewer["token"])
    socket = await node.ws(stream["id"], creator["token"])
    await events_until(socket, lambda evs: any(e["type"] == "snapshot" for e in evs))
    status, sent = await api(node, "POST", f"/api/streams/{stream['id']}/gifts", viewer["token"],
                             {"gift_id": "heart", "count": 3, "idempotency_key": key()})
    assert status == 200, sent
    assert sent["coins"] == 15 and sent["coins_balance"] == 85
    seen = await events_until(socket, lambda evs: any(e["type"] == "gift" for e in evs))
    gift_event = next(e for e in seen if e["type"] == "gift")
    assert gift_event["gift"]["id"] == "heart" and gift_event["count"] == 3 and gift_event["combo"] == 3
    assert gift_event["gift"]["icon_url"] == commerce_of(node).catalogue.gifts["heart"].icon_url  # what pages draw
    assert gift_event["user"]["id"] == viewer["id"] and "seq" in gift_event
    status, wallet = await api(node, "GET", "/api/wallet", creator["token"])
    assert wallet["earnings"]["held_diamonds"] == 15  # 15 coins = 30 diamonds, half to the creator
    status, board = await api(node, "GET", f"/api/streams/{stream['id']}/leaderboard")
    assert board["leaders"][0]["user"]["id"] == viewer["id"] and board["leaders"][0]["coins"] == 15
    await assert_invariants(node)


async def test_combos_count_up_and_end_by_the_clock(node_factory) -> None:  # type: ignore[no-untyped-def]
    clock = ManualClock()
    node = await node_factory(clock=clock, gift_combo_sweep_ms=3_600_000)  # the test ends combos itself
    creator, stream, viewer = await _room(node)
    await buy_coins(node, viewer["token"])
    socket = await node.ws(stream["id"], creator["token"])
    await events_until(socket, lambda evs: any(e["type"] == "snapshot" for e in evs))
    path = f"/api/streams/{stream['id']}/gifts"
    for _ in range(3):
        await api(node, "POST", path, viewer["token"], {"gift_id": "rose", "idempotency_key": key()})
        clock.advance(1)
    seen = await events_until(socket, lambda evs: sum(e["type"] == "gift" for e in evs) == 3)
    assert [e["combo"] for e in seen if e["type"] == "gift"] == [1, 2, 3]
    await gifts.end_due_combos(commerce_of(node))  # within the window: the combo goes on
    await api(node, "POST", path, viewer["token"], {"gift_id": "rose", "idempotency_key": key()})
    seen = await events_until(socket, lambda evs: any(e["type"] == "gift" for e in evs))
    assert [e["combo"] for e in seen if e["type"] == "gift"] == [4]
    clock.advance(3.1)
    assert await gifts.end_due_combos(commerce_of(node)) >= 1
    ended = await events_until(socket, lambda evs: any(e["type"] == "gift_end" for e in evs))
    end = next(e for e in ended if e["type"] == "gift_end")
    assert end["combo"] == 4 and end["gift"]["id"] == "rose" and end["user"]["id"] == viewer["id"]
    await api(node, "POST", path, viewer["token"], {"gift_id": "rose", "idempotency_key": key()})
    fresh = await events_until(socket, lambda evs: any(e["type"] == "gift" for e in evs))
    assert next(e for e in fresh if e["type"] == "gift")["combo"] == 1


async def test_concurrent_gifts_with_coins_for_some_succeed_exactly_that_many(node) -> None:  # type: ignore[no-untyped-def]
    _creator, stream, viewer = await _room(node)
    await buy_coins(node, viewer["token"])  # 100 coins: 20 hearts of 5
    path = f"/api/streams/{stream['id']}/gifts"
    results = await asyncio.gather(*[
        api(node, "POST", path, viewer["token"], {"gift_id": "heart", "idempotency_key": key()}) for _ in range(60)
    ])
    statuses = [s for s, _ in results]
    assert statuses.count(200) == 20, statuses
    assert statuses.count(402) == 40
    assert all(b["type"] == "livecore:insufficient-funds" for s, b in results if s == 402)
    assert await coins(node, viewer["token"]) == 0
    await assert_invariants(node)


async def test_a_retried_gift_returns_the_first_result_and_moves_nothing(node) -> None:  # type: ignore[no-untyped-def]
    _creator, stream, viewer = await _room(node)
    await buy_coins(node, viewer["token"])
    body = {"gift_id": "doughnut", "idempotency_key": key()}
    path = f"/api/streams/{stream['id']}/gifts"
    results = await asyncio.gather(*[api(node, "POST", path, viewer["token"], body) for _ in range(8)])
    assert {s for s, _ in results} == {200}
    assert len({b["transaction_id"] for _, b in results}) == 1
    assert sum(not b["replayed"] for _, b in results) == 1
    status, again = await api(node, "POST", path, viewer["token"], body)
    assert again["transaction_id"] == results[0][1]["transaction_id"] and again["replayed"]
    assert await coins(node, viewer["token"]) == 70
    header_key = key()
    for _ in range(2):
        status, _sent = await api(node, "POST", path, viewer["token"], {"gift_id": "rose"},
                                 headers={"Idempotency-Key": header_key})
        assert status == 200
    assert await coins(node, viewer["token"]) == 69
    status, missing = await api(node, "POST", path, viewer["token"], {"gift_id": "rose"})
    assert status == 400 and missing["type"] == "livecore:idempotency-key-required"


async def test_rules_refuse_with_a_problem_naming_the_rule(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = await node_factory(gift_coins_per_day_max=50)
    creator, stream, viewer = await _room(node)
    minor = await node.signup(birth_date="2015-01-01")
    await buy_coins(node, viewer["token"])
    path = f"/api/streams/{stream['id']}/gifts"
    status, body = await api(node, "POST", path, minor["token"], {"gift_id": "rose", "idempotency_key": key()})
    assert status == 403 and body["type"] == "livecore:rule-adults-only"
    status, body = await api(node, "POST", "/api/coins/purchases", minor["token"],
                             {"package_id": "coins_100", "idempotency_key": key()})
    assert status == 403 and body["rule"] == "adults_only"
    status, body = await api(node, "POST", path, viewer["token"], {"gift_id": "doughnut", "idempotency_key": key()})
    assert status == 200
    status, body = await api(node, "POST", path, viewer["token"], {"gift_id": "doughnut", "idempotency_key": key()})
    assert status == 429 and body["rule"] == "gift_coins_per_day_max" and body["limit_value"] == 50
    assert await coins(node, viewer["token"]) == 70  # the refused gift moved nothing
    status, body = await api(node, "POST", path, creator["token"], {"gift_id": "rose", "idempotency_key": key()})
    assert status == 403 and body["type"] == "livecore:self-gift"
    status, body = await api(node, "POST", path, viewer["token"], {"gift_id": "nope", "idempotency_key": key()})
    assert status == 404
    await assert_invariants(node)


async def test_gifts_over_the_websocket(node) -> None:  # type: ignore[no-untyped-def]
    _creator, stream, viewer = await _room(node)
    await buy_coins(node, viewer["token"])
    socket = await node.ws(stream["id"], viewer["token"])
    await events_until(socket, lambda evs: any(e["type"] == "snapshot" for e in evs))
    gift_key = key()
    await send(socket, {"type": "gift", "gift_id": "ice_cream", "count": 2, "idempotency_key": gift_key})
    seen = await events_until(socket, lambda evs: {"gift", "wallet"} <= {e["type"] for e in evs})
    assert next(e for e in seen if e["type"] == "wallet")["coins"] == 80
    await send(socket, {"type": "gift", "gift_id": "ice_cream", "count": 2, "idempotency_key": gift_key})
    replay = await events_until(socket, lambda evs: any(e["type"] == "wallet" for e in evs))
    assert next(e for e in replay if e["type"] == "wallet")["coins"] == 80
    await send(socket, {"type": "gift", "gift_id": "universe", "idempotency_key": key()})
    refused = await events_until(socket, lambda evs: any(e["type"] == "error" for e in evs))
    error = next(e for e in refused if e["type"] == "error")
    assert error["command"] == "gift" and error["code"] == "insufficient-funds"
    await send(socket, {"type": "gift", "gift_id": "rose"})
    refused = await events_until(socket, lambda evs: any(e["type"] == "error" for e in evs))
    assert next(e for e in refused if e["type"] == "error")["code"] == "invalid-field"
    assert await coins(node, viewer["token"]) == 80
