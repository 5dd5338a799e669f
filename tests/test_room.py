"""The room WebSocket on one node: snapshot, chat, likes, resume, limits and bad input."""

from __future__ import annotations

import asyncio

import aiohttp
import asyncpg
import msgpack
import pytest
from livenode import NodeFactory, RunningNode, Servers
from roomclient import events_until, receive_events, send
from tablelocks import until_a_query_waits_for

from livecore.streams import go_live
from signaling import protocol
from signaling.hub import RoomHub

BATCHING_ALWAYS = {"batch_writes_per_s_min": 0, "batch_node_writes_per_s_min": 0}  # no writes budget: rooms batch


async def _room(node: RunningNode) -> tuple[dict, dict]:
    creator = await node.signup()
    stream = await node.create_stream(creator["token"])
    return creator, stream


def _of(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["type"] == kind]


@pytest.mark.parametrize("subprotocol", protocol.SUBPROTOCOLS)
async def test_join_snapshot_then_chat_in_order(node: RunningNode, subprotocol: str) -> None:
    _, stream = await _room(node)
    viewer = await node.signup(display_name="Val")
    socket = await node.ws(stream["id"], viewer["token"], subprotocol)
    assert socket.protocol == subprotocol
    [snapshot] = await receive_events(socket)
    assert snapshot["type"] == "snapshot" and snapshot["state"] == "live" and snapshot["epoch"]
    assert snapshot["you"]["id"] == viewer["id"] and snapshot["you"]["is_moderator"] is False
    for i in range(5):
        await send(socket, {"type": "chat", "text": f"message {i} <script>"})
    chats = _of(await events_until(socket, lambda got: len(_of(got, "chat")) == 5), "chat")
    assert [c["text"] for c in chats] == [f"message {i} <script>" for i in range(5)]
    assert [c["seq"] for c in chats] == sorted(c["seq"] for c in chats)
    assert all(c["seq"] > snapshot["seq"] and c["user"] == {"id": viewer["id"], "name": "Val"} for c in chats)


SLOW_MODE_OFF = {"type": "moderation", "action": "slow_mode", "seconds": 0}


async def test_many_events_share_one_frame(node_factory: NodeFactory) -> None:
    # One tick outlasts ten publishes on a busy machine; with no writes budget even a one-viewer room batches.
    node = await node_factory(tick_ms_min=1000, tick_ms_max=1000, **BATCHING_ALWAYS,
                              must_flush_gap_ms_min=600_000)
    creator, stream = await _room(node)
    socket = await node.ws(stream["id"], creator["token"])
    await receive_events(socket)
    await node.plane.publish(stream["id"], SLOW_MODE_OFF)
    assert len(_of(await _frame_with_moderation(socket), "moderation")) == 1  # the room was quiet: at once
    # These are must-deliver events, which may bring a busy room's flush forward once in a while: not this time.
    node.plane.hub.rooms[stream["id"]].tick.hurried(asyncio.get_running_loop().time())
    # Now the room is busy: what comes within a tick of that flush waits for the tick and goes out together.
    await asyncio.gather(*(node.plane.publish(stream["id"], SLOW_MODE_OFF) for _ in range(10)))
    assert len(_of(await _frame_with_moderation(socket), "moderation")) == 10
    # Each flush with events is timed on both clocks, so an operator can see the tick's cost and any CPU wait.
    registry = node.node.registry
    flushes = registry.get_sample_value("livecore_room_flush_cpu_seconds_count")
    frames = registry.get_sample_value("livecore_room_frames_built_total")
    assert flushes is not None and frames is not None
    assert flushes >= frames >= 2  # one subprotocol: at most one frame per flush (none if nobody took it)
    assert registry.get_sample_value("livecore_room_flush_wall_seconds_count") == flushes


async def _frame_with_moderation(socket: aiohttp.ClientWebSocketResponse) -> list[dict]:
    """The next frame that carries moderation events (a presence count may go out in a frame of its own)."""
    frame = await receive_events(socket)
    while not _of(frame, "moderation"):
        frame = await receive_events(socket)
    return frame


async def _room_right_after_a_flush(node: RunningNode) -> tuple[dict, aiohttp.ClientWebSocketResponse, RoomHub]:
    """A live room with one viewer that has just been sent an event (the next comes within a tick of that flush)."""
    creator, stream = await _room(node)
    socket = await node.ws(stream["id"], creator["token"])
    await receive_events(socket)
    await node.plane.publish(stream["id"], SLOW_MODE_OFF)
    assert len(_of(await _frame_with_moderation(socket), "moderation")) == 1
    return stream, socket, node.plane.hub.rooms[stream["id"]]


async def test_a_quiet_room_does_not_wait_for_its_tick(node_factory: NodeFactory) -> None:
    # A tick longer than any test; with no writes budget even a one-viewer room batches once it has had events.
    node = await node_factory(tick_ms_min=600_000, tick_ms_max=600_000, **BATCHING_ALWAYS)
    _, _, room = await _room_right_after_a_flush(node)
    room.add({"type": "viewers", "ts": 0, "count": 1})  # right after a flush: this one waits for the tick
    assert room.flush_due_s is not None and room.flush_due_s >= asyncio.get_running_loop().time() + 500


async def test_a_must_deliver_event_does_not_wait_for_a_busy_rooms_tick(node_factory: NodeFactory) -> None:
    node = await node_factory(tick_ms_min=600_000, tick_ms_max=600_000, **BATCHING_ALWAYS,
                              must_flush_gap_ms_min=600_000)
    stream, socket, room = await _room_right_after_a_flush(node)
    room.add({"type": "viewers", "ts": 0, "count": 7})  # right after a flush: it waits for the (ten-minute) tick
    assert room.flush_due_s is not None
    must_out_before = _must_deliver_out_count(node)
    await node.plane.publish(stream["id"], SLOW_MODE_OFF)  # must-deliver: out now, with what waited before it
    frame = await _frame_with_moderation(socket)
    assert [e["type"] for e in frame] == ["viewers", "moderation"] and frame[0]["count"] == 7, frame
    assert _must_deliver_out_count(node) == must_out_before + 1  # the moderation event's time, not the count's
    # A second one within must_flush_gap_ms_min waits for the tick like everything else: the extra flushes are bounded.
    room.add({"type": "moderation", "ts": 0, "seq": room.last_seq + 1, "action": "slow_mode", "seconds": 0})
    assert room.flush_due_s is not None


def _must_deliver_out_count(node: RunningNode) -> float:
    [metric] = node.plane.hub.metrics.must_deliver_out.collect()
    return next(sample.value for sample in metric.samples if sample.name.endswith("_count"))


async def test_a_room_under_the_writes_budget_never_waits(node: RunningNode) -> None:
    # A handful of viewers at chat speed costs far fewer writes than the batching budgets: no batching, no wait.
    _, _, room = await _room_right_after_a_flush(node)
    room.add({"type": "viewers", "ts": 0, "count": 1})  # right after a flush, yet out in this turn of the loop
    assert room._flush_handle is not None and room.flush_due_s is None


async def test_likes_are_aggregated_with_a_total(node: RunningNode) -> None:
    _, stream = await _room(node)
    viewer = await node.signup()
    socket = await node.ws(stream["id"], viewer["token"])
    await receive_events(socket)
    for _ in range(4):
        await send(socket, {"type": "like", "count": 3})
    likes = _of(await events_until(socket, lambda got: sum(e["count"] for e in _of(got, "like")) >= 12), "like")
    assert len(likes) < 4 and likes[-1]["total"] == 12
    await send(socket, {"type": "chat", "text": "seen by the next joiner"})
    await events_until(socket, lambda got: bool(_of(got, "chat")))
    [snapshot] = await receive_events(await node.ws(stream["id"]))  # taken from the node's copy of the room
    assert snapshot["likes"] == 12 and [c["text"] for c in snapshot["recent"]] == ["seen by the next joiner"]
    assert snapshot["viewers"] >= 2


async def test_resume_gets_exactly_the_missed_events(node: RunningNode) -> None:
    creator, stream = await _room(node)
    socket = await node.ws(stream["id"], creator["token"])
    [snapshot] = await receive_events(socket)
    await send(socket, {"type": "chat", "text": "before"})
    [seen] = _of(await events_until(socket, lambda got: bool(_of(got, "chat"))), "chat")
    await socket.close()
    for i in range(3):
        await node.plane.publish(stream["id"], {"type": "chat", "user": {"id": 1, "name": "x"}, "text": f"m{i}"})
    resumed = await node.ws(stream["id"], creator["token"], since=f"{snapshot['epoch']}:{seen['seq']}")
    missed = await receive_events(resumed)
    assert [e["text"] for e in missed] == ["m0", "m1", "m2"]
    assert [e["seq"] for e in missed] == [seen["seq"] + 1, seen["seq"] + 2, seen["seq"] + 3]


async def test_resume_beyond_the_window_or_epoch_gets_reset_and_snapshot(node_factory: NodeFactory) -> None:
    node = await node_factory(replay_events_max=5)
    creator, stream = await _room(node)
    socket = await node.ws(stream["id"], creator["token"])
    [snapshot] = await receive_events(socket)
    await socket.close()
    for i in range(12):
        await node.plane.publish(stream["id"], {"type": "chat", "user": {"id": 1, "name": "x"}, "text": f"m{i}"})
    for since in (f"{snapshot['epoch']}:{snapshot['seq']}", f"otherepoch:{snapshot['seq']}"):
        resumed = await node.ws(stream["id"], creator["token"], since=since)
        reset, fresh, *later = await receive_events(resumed)  # a viewer count may come in the same frame
        assert reset["type"] == "reset" and fresh["type"] == "snapshot"
        assert all(e["type"] == "viewers" for e in later), later
        assert fresh["seq"] == snapshot["seq"] + 12
        assert [c["text"] for c in fresh["recent"]] == [f"m{i}" for i in range(7, 12)]
    async with node.http.get(f"{node.url}/ws/rooms/{stream['id']}", params={"since": "garbage"}) as r:
        assert r.status == 400 and (await r.json(content_type=None))["type"] == "livecore:bad-since"


async def test_bad_frames_get_errors_and_the_connection_goes_on(node_factory: NodeFactory) -> None:
    node = await node_factory(ws_frame_bytes_max=512, chat_chars_max=20)
    _, stream = await _room(node)
    viewer = await node.signup()
    socket = await node.ws(stream["id"], viewer["token"], protocol.MSGPACK)
    await receive_events(socket)
    await socket.send_bytes(b"\xc1\xc1")
    await socket.send_str("text in a binary subprotocol")
    await socket.send_bytes(msgpack.packb({"type": "teleport"}))
    await socket.send_bytes(msgpack.packb({"type": "chat", "text": "x" * 600}))
    await socket.send_bytes(msgpack.packb({"type": "chat", "text": "y" * 21}))
    await socket.send_bytes(msgpack.packb({"type": "chat", "text": 5}))
    await socket.send_bytes(msgpack.packb({"type": "like", "count": 10**9}))
    errors = await events_until(socket, lambda got: len(got) == 7)
    assert [(e["code"], e.get("limit")) for e in errors] == [
        ("malformed", None), ("bad-frame", None), ("unknown-command", None),
        ("frame-too-large", "ws_frame_bytes_max"), ("too-long", "chat_chars_max"), ("invalid-field", None),
        ("invalid-field", "like_count_per_command_max"),
    ]
    await send(socket, {"type": "chat", "text": "still here"})
    chats = _of(await events_until(socket, lambda got: bool(_of(got, "chat"))), "chat")
    assert chats[0]["text"] == "still here"


async def test_oversize_frame_past_the_hard_limit_closes_only_that_socket(node_factory: NodeFactory) -> None:
    node = await node_factory(ws_frame_bytes_hard_max=8192)
    creator, stream = await _room(node)
    bystander = await node.ws(stream["id"], creator["token"])
    await receive_events(bystander)
    socket = await node.ws(stream["id"], (await node.signup())["token"])
    await receive_events(socket)
    await socket.send_str("z" * 20000)
    message = await socket.receive(timeout=5)
    assert message.type == aiohttp.WSMsgType.CLOSE and message.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    await send(bystander, {"type": "chat", "text": "unaffected"})
    assert _of(await events_until(bystander, lambda got: bool(_of(got, "chat"))), "chat")


async def test_chat_flood_is_rate_limited_by_name(node_factory: NodeFactory) -> None:
    node = await node_factory(chat_per_user_per_10s_max=3)
    _, stream = await _room(node)
    socket = await node.ws(stream["id"], (await node.signup())["token"])
    await receive_events(socket)
    for i in range(6):
        await send(socket, {"type": "chat", "text": f"flood {i}"})
    got = await events_until(socket, lambda got: len(_of(got, "chat")) == 3 and len(_of(got, "error")) == 3)
    assert {e["limit"] for e in _of(got, "error")} == {"chat_per_user_per_10s_max"}


async def test_anonymous_viewers_watch_but_cannot_chat(node: RunningNode) -> None:
    _, stream = await _room(node)
    socket = await node.ws(stream["id"])
    [snapshot] = await receive_events(socket)
    assert snapshot["you"]["id"] == 0
    await send(socket, {"type": "chat", "text": "hi"})
    [error] = await receive_events(socket)
    assert error["code"] == "login-required"


async def test_bad_tokens_and_unknown_rooms_are_refused_before_upgrade(node: RunningNode) -> None:
    _, stream = await _room(node)
    async with node.http.get(f"{node.url}/ws/rooms/{stream['id']}", params={"token": "forged"}) as r:
        assert r.status == 401 and (await r.json(content_type=None))["type"] == "livecore:bad-token"
    async with node.http.get(f"{node.url}/ws/rooms/99999999") as r:
        assert r.status == 404


async def test_connections_per_user_limit(node_factory: NodeFactory) -> None:
    node = await node_factory(connections_per_user_max=2)
    _, stream = await _room(node)
    token = (await node.signup())["token"]
    for _ in range(2):
        await receive_events(await node.ws(stream["id"], token))
    third = await node.ws(stream["id"], token)
    [error] = await receive_events(third)
    assert error["code"] == "too-many-connections" and error["limit"] == "connections_per_user_max"
    closing = await third.receive(timeout=5)
    assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == protocol.CLOSE_TOO_MANY_CONNECTIONS


async def test_stream_end_reaches_the_room(node: RunningNode) -> None:
    creator, stream = await _room(node)
    socket = await node.ws(stream["id"])
    await receive_events(socket)
    async with node.http.post(f"{node.url}/api/streams/{stream['id']}/end",
                              headers={"Authorization": f"Bearer {creator['token']}"}) as r:
        assert r.status == 200
    [state] = _of(await events_until(socket, lambda got: bool(_of(got, "stream"))), "stream")
    assert state["state"] == "ended" and state["seq"] > 0


async def test_a_stream_going_live_while_a_viewer_joins_is_live_to_that_viewer(
    node: RunningNode, servers: Servers
) -> None:
    """The stream goes live after the join request read it (`created`) and before the room's log position that
    the snapshot's seq comes from: the joiner must still see it live, in the snapshot or as an event after it."""
    creator = await node.signup()
    stream = await node.create_stream(creator["token"], live=False)
    blocker = await asyncpg.connect(servers.database_url)
    try:
        async with blocker.transaction():
            # Opening the room reads its moderation rules: held here, the join waits between its two reads.
            await blocker.execute("LOCK TABLE room_moderation IN ACCESS EXCLUSIVE MODE")
            socket = await node.ws(stream["id"], creator["token"])
            await until_a_query_waits_for(blocker, "room_moderation")
            assert await go_live(node.node, stream["id"])  # as a publisher connecting on any node does
    finally:
        await blocker.close()
    heard = await events_until(socket, lambda got: bool(_of(got, "snapshot")))
    await send(socket, {"type": "chat", "text": "after the join"})
    heard += await events_until(socket, lambda got: any(e.get("text") == "after the join" for e in got))
    states = [e["state"] for e in heard if e["type"] in ("snapshot", "stream")]
    assert states[-1] == "live", heard



async def test_a_full_publish_queue_refuses_chat_by_name(node_factory: NodeFactory) -> None:
    node = await node_factory(publish_queue_events_max=0)
    _, stream = await _room(node)
    socket = await node.ws(stream["id"], (await node.signup())["token"])
    await receive_events(socket)
    await send(socket, {"type": "chat", "text": "anyone?"})
    [error] = _of(await events_until(socket, lambda got: bool(_of(got, "error"))), "error")
    assert error["code"] == "busy" and error["limit"] == "publish_queue_events_max"


async def test_a_stopping_node_closes_room_sockets_before_waiting_for_handlers(node_factory: NodeFactory) -> None:
    """aiohttp waits for running handlers when it stops, and a room socket's handler runs until its socket closes:
    the node's shutdown step closes them (1001) so Ctrl-C does not wait out a watching browser."""
    node = await node_factory()
    _, stream = await _room(node)
    socket = await node.ws(stream["id"])
    await receive_events(socket)
    await node.app.shutdown()  # the step aiohttp runs before it waits for handlers
    closing = await socket.receive(timeout=10)
    while closing.type == aiohttp.WSMsgType.TEXT:  # events already on their way (a viewer count)
        closing = await socket.receive(timeout=10)
    assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == protocol.CLOSE_GOING_AWAY
