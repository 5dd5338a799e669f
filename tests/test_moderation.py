"""Moderation by the creator and moderators, driven through the room WebSocket; deadlines by a manual clock."""

from __future__ import annotations

import aiohttp
from livenode import NodeFactory, RunningNode
from roomclient import events_until, receive_events, send

from livecore.clock import ManualClock
from signaling import protocol


def _of(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["type"] == kind]


async def _joined(node: RunningNode, room_id: int, token: str) -> aiohttp.ClientWebSocketResponse:
    socket = await node.ws(room_id, token)
    await receive_events(socket)
    return socket


async def _setup(node: RunningNode) -> tuple[dict, dict, dict]:
    creator = await node.signup()
    stream = await node.create_stream(creator["token"])
    return creator, stream, await node.signup()


async def test_only_moderators_moderate(node: RunningNode) -> None:
    _, stream, viewer = await _setup(node)
    socket = await _joined(node, stream["id"], viewer["token"])
    for command in ({"type": "ban", "user_id": 1}, {"type": "slow_mode", "seconds": 5},
                    {"type": "delete", "id": 1}, {"type": "blocked_words", "words": ["x"]}):
        await send(socket, command)
        [error] = await receive_events(socket)
        assert error["code"] == "not-moderator" and error["command"] == command["type"]


async def test_delete_and_ban_reach_everyone_and_ban_closes_the_user(node: RunningNode) -> None:
    creator, stream, viewer = await _setup(node)
    mod = await _joined(node, stream["id"], creator["token"])
    troll = await _joined(node, stream["id"], viewer["token"])
    await send(troll, {"type": "chat", "text": "spam"})
    [spam] = _of(await events_until(mod, lambda got: bool(_of(got, "chat"))), "chat")
    await send(mod, {"type": "delete", "id": spam["id"]})
    [deleted] = _of(await events_until(mod, lambda got: bool(_of(got, "moderation"))), "moderation")
    assert deleted["action"] == "delete" and deleted["id"] == spam["id"]
    await send(mod, {"type": "ban", "user_id": viewer["id"]})
    got = await events_until(mod, lambda got: bool(_of(got, "moderation")))
    assert _of(got, "moderation")[0]["action"] == "ban"
    while (message := await troll.receive(timeout=5)).type != aiohttp.WSMsgType.CLOSE:
        pass
    assert message.data == protocol.CLOSE_BANNED
    again = await node.ws(stream["id"], viewer["token"])
    [error] = await receive_events(again)
    assert error["code"] == "banned"
    fresh = await node.ws(stream["id"], creator["token"])
    [snapshot] = await receive_events(fresh)
    assert all(c["id"] != spam["id"] for c in snapshot["recent"])


async def test_timeout_expires_by_the_clock(node_factory: NodeFactory) -> None:
    clock = ManualClock()
    node = await node_factory(clock=clock)
    creator, stream, viewer = await _setup(node)
    mod = await _joined(node, stream["id"], creator["token"])
    user = await _joined(node, stream["id"], viewer["token"])
    await send(mod, {"type": "timeout", "user_id": viewer["id"], "seconds": 60})
    await events_until(user, lambda got: bool(_of(got, "moderation")))
    await send(user, {"type": "chat", "text": "am I muted?"})
    [error] = _of(await events_until(user, lambda got: bool(_of(got, "error"))), "error")
    assert error["code"] == "timed-out" and "60" in error["detail"]
    clock.advance(61)
    await send(user, {"type": "chat", "text": "back"})
    assert _of(await events_until(user, lambda got: bool(_of(got, "chat"))), "chat")[0]["text"] == "back"


async def test_slow_mode_and_blocked_words(node_factory: NodeFactory) -> None:
    clock = ManualClock()
    node = await node_factory(clock=clock)
    creator, stream, viewer = await _setup(node)
    mod = await _joined(node, stream["id"], creator["token"])
    user = await _joined(node, stream["id"], viewer["token"])
    await send(mod, {"type": "slow_mode", "seconds": 30})
    await send(mod, {"type": "blocked_words", "words": ["Scam"]})
    got = await events_until(user, lambda got: len(_of(got, "moderation")) == 2)
    assert [m["action"] for m in _of(got, "moderation")] == ["slow_mode", "blocked_words"]
    assert "words" not in _of(got, "moderation")[1]
    await send(user, {"type": "chat", "text": "first"})
    await send(user, {"type": "chat", "text": "second"})
    got = await events_until(user, lambda got: bool(_of(got, "chat")) and bool(_of(got, "error")))
    assert _of(got, "error")[0]["code"] == "slow-mode" and _of(got, "error")[0]["limit"] == "slow_mode_s"
    clock.advance(31)
    await send(user, {"type": "chat", "text": "total SCAM here"})
    [error] = _of(await events_until(user, lambda got: bool(_of(got, "error"))), "error")
    assert error["code"] == "blocked-word"
    await send(mod, {"type": "slow_mode", "seconds": 10**6})
    [error] = _of(await events_until(mod, lambda got: bool(_of(got, "error"))), "error")
    assert error["limit"] == "slow_mode_s_max"


async def test_moderation_survives_a_node_restart(node_factory: NodeFactory) -> None:
    node = await node_factory()
    creator, stream, viewer = await _setup(node)
    mod = await _joined(node, stream["id"], creator["token"])
    await send(mod, {"type": "ban", "user_id": viewer["id"]})
    await events_until(mod, lambda got: bool(_of(got, "moderation")))
    await node.stop()
    other = await node_factory()
    socket = await other.ws(stream["id"], viewer["token"])
    [error] = await receive_events(socket)
    assert error["code"] == "banned"
    host = await _joined(other, stream["id"], creator["token"])
    await send(host, {"type": "unban", "user_id": viewer["id"]})
    # The node applies an unban when it hears it back from the bus, as the creator does: only then is it in force.
    await events_until(host, lambda got: any(m["action"] == "unban" for m in _of(got, "moderation")))
    socket = await other.ws(stream["id"], viewer["token"])
    events = await events_until(socket, lambda got: bool(_of(got, "snapshot")))
    assert _of(events, "snapshot")


async def test_creator_appoints_a_moderator_who_can_moderate_at_once(node: RunningNode) -> None:
    creator, stream, helper = await _setup(node)
    troll = await node.signup()
    helper_socket = await _joined(node, stream["id"], helper["token"])
    auth = {"Authorization": f"Bearer {helper['token']}"}
    async with node.http.post(f"{node.url}/api/rooms/{stream['id']}/moderators", json={"user_id": troll["id"]},
                              headers=auth) as r:
        assert r.status == 403
    auth = {"Authorization": f"Bearer {creator['token']}"}
    async with node.http.post(f"{node.url}/api/rooms/{stream['id']}/moderators", json={"user_id": helper["id"]},
                              headers=auth) as r:
        assert r.status == 204
    await events_until(helper_socket, lambda got: bool(_of(got, "moderation")))
    await send(helper_socket, {"type": "slow_mode", "seconds": 5})
    got = await events_until(helper_socket, lambda got: bool(_of(got, "moderation")) or bool(_of(got, "error")))
    assert _of(got, "moderation")[0]["action"] == "slow_mode"
