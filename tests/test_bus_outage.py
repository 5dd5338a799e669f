"""Redis (Valkey) lost under a live room: killed with -9 and started again empty, with its append-only file, or
with the tail of a room's log gone. Each test runs its own Valkey so the session's stays up.

After each: the room never hands out its old epoch once Redis is back, every viewer gets at most one `reset`
followed by a fresh snapshot, chat sent after the restart reaches every viewer whatever the old seq was, and chat
sent while Redis is down is answered with a `bus-unavailable` error instead of vanishing; HTTP answers 503
`livecore:unavailable` naming the bus meanwhile. Recovery times are printed, not asserted.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as redis
from livenode import NodeFactory, RunningNode, Servers
from roomclient import events_until, receive_events, send

from livecore.embedded import EmbeddedValkey
from signaling.bus import Bus, room_tag
from signaling.outbox import Outbox

WAIT_S_MAX = 30.0  # generous: other test runs share the machine
RESENDS_MAX = 20  # a chat refused with bus-unavailable just after the restart is said again, up to this often
RESEND_PAUSE_S = 0.2


async def _until(condition: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    """Poll a condition on other processes until it holds (a bounded wait, not a clock deadline)."""
    deadline = time.monotonic() + WAIT_S_MAX
    while True:
        value = condition()
        if not isinstance(value, bool):
            value = await value
        if value:
            return
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def valkey(tmp_path: Path) -> AsyncIterator[EmbeddedValkey]:
    server = EmbeddedValkey(tmp_path / "valkey")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _kill(valkey: EmbeddedValkey) -> None:
    assert valkey.process is not None
    valkey.process.kill()  # -9: no goodbye, no last write to the append-only file
    valkey.process.wait()


def _forget_everything(valkey: EmbeddedValkey) -> None:
    for path in valkey.directory.iterdir():
        if path.name != "port":  # the same port: the nodes reconnect to the same URL
            shutil.rmtree(path) if path.is_dir() else path.unlink()


class Room:
    """A room on two nodes of one Valkey: a talker and a watcher on the first, a watcher on the second."""

    def __init__(self, nodes: list[RunningNode], room_id: int, sockets: dict[str, aiohttp.ClientWebSocketResponse],
                 snapshot: dict) -> None:
        self.nodes = nodes
        self.id = room_id
        self.sockets = sockets
        self.snapshot = snapshot

    @property
    def talker(self) -> aiohttp.ClientWebSocketResponse:
        return self.sockets["talker"]

    async def chat(self, text: str) -> None:
        await send(self.talker, {"type": "chat", "text": text})

    async def everyone_sees(self, text: str, but: str | None = None) -> dict[str, list[dict]]:
        """Each socket's events (but `but`'s) up to and including the chat `text`."""
        return {name: await events_until(socket, lambda got: any(e.get("text") == text for e in got), WAIT_S_MAX)
                for name, socket in self.sockets.items() if name != but}


async def _room_on_two_nodes(node_factory: NodeFactory, servers: Servers, valkey: EmbeddedValkey) -> Room:
    own = Servers(servers.database_url, valkey.url, servers.directory)
    a, b = [await node_factory(on=own, chat_per_user_per_10s_max=100) for _ in range(2)]
    creator, talker = await a.signup(), await a.signup()
    room_id = (await a.create_stream(creator["token"]))["id"]
    sockets = {"talker": await a.ws(room_id, talker["token"]), "watcher on a": await a.ws(room_id),
               "watcher on b": await b.ws(room_id)}
    snapshots = [(await receive_events(socket))[0] for socket in sockets.values()]
    assert {s["type"] for s in snapshots} == {"snapshot"} and len({s["epoch"] for s in snapshots}) == 1
    room = Room([a, b], room_id, sockets, snapshots[0])
    for i in range(12):  # a seq well past what a fresh log reaches in this test
        await room.chat(f"before {i}")
    await room.everyone_sees("before 11")
    return room


async def _bus_down(room: Room) -> None:
    """What the room's users get while Redis is down: 503s over HTTP, an error for chat (never silence)."""
    for node in room.nodes:
        await _until(lambda node=node: not node.plane.bus.available, "the node noticed the bus is gone")
    a = room.nodes[0]
    async with a.http.get(f"{a.url}/api/streams/{room.id}") as response:  # reads the viewer count from Redis
        body = await response.json(content_type=None)
        assert response.status == 503, body
        assert body["type"] == "livecore:unavailable" and body["unavailable"] == "bus", body
        assert int(response.headers["Retry-After"]) >= 1
    await room.chat("while down")
    got = await events_until(room.talker, lambda got: any(e["type"] == "error" for e in got), WAIT_S_MAX)
    error = next(e for e in got if e["type"] == "error")
    assert error["code"] == "bus-unavailable" and error["command"] == "chat", error


async def _bus_back(room: Room, restarted_at: float) -> dict[str, list[dict]]:
    for node in room.nodes:
        await _until(lambda node=node: node.plane.bus.available, "the node is back on the bus")
    back_s = time.monotonic() - restarted_at
    # The first command after the restart may still meet a pooled connection of before it: then the talker is told
    # (`bus-unavailable`, nothing published) and says it again, as a client does.
    talker_saw: list[dict] = []
    for _ in range(RESENDS_MAX):
        await room.chat("after")
        got = await events_until(room.talker, lambda got: any(e.get("text") == "after" or e["type"] == "error"
                                                              for e in got), WAIT_S_MAX)
        talker_saw += got
        refusals = [e for e in got if e["type"] == "error"]
        if not refusals:
            break
        assert all(e["code"] == "bus-unavailable" for e in refusals), refusals
        await asyncio.sleep(RESEND_PAUSE_S)
    seen = {"talker": talker_saw, **await room.everyone_sees("after", but="talker")}
    print(f"bus available again {back_s:.2f} s after the restart; chat on every viewer "
          f"{time.monotonic() - restarted_at:.2f} s after it")
    return seen


def _no_chat_twice_and_none_lost_silently(seen: dict[str, list[dict]]) -> None:
    for name, events in seen.items():
        texts = [e["text"] for e in events if e["type"] == "chat"]
        assert "while down" not in texts, (name, texts)  # refused with an error, not published later
        assert texts.count("after") == 1, (name, texts)


async def test_valkey_restarted_empty_restarts_the_room_in_a_new_epoch(
    valkey: EmbeddedValkey, node_factory: NodeFactory, servers: Servers
) -> None:
    room = await _room_on_two_nodes(node_factory, servers, valkey)
    old_epoch = room.snapshot["epoch"]
    _kill(valkey)
    await _bus_down(room)
    _forget_everything(valkey)
    valkey.start()
    restarted_at = time.monotonic()
    seen = await _bus_back(room, restarted_at)
    _no_chat_twice_and_none_lost_silently(seen)
    for name, events in seen.items():
        resets = [i for i, e in enumerate(events) if e["type"] == "reset"]
        assert len(resets) == 1, (name, events)  # one reset per viewer, and then the room goes on
        reset, snapshot = events[resets[0]], events[resets[0] + 1]
        assert reset["reason"] == "bus-restarted" and snapshot["type"] == "snapshot", (name, events)
        assert reset["epoch"] == snapshot["epoch"] != old_epoch, (name, events)
        after = next(e for e in events if e.get("text") == "after")
        assert after["seq"] > snapshot["seq"] and events.index(after) > resets[0] + 1, (name, events)
        # nothing of the old epoch after the snapshot: every later seq is the new log's, from its start
        assert [e["seq"] for e in events[resets[0] + 2:] if "seq" in e] == list(range(1, after["seq"] + 1))
    new_epoch = seen["watcher on b"][-1]["seq"], next(e["epoch"] for e in seen["watcher on b"] if e["type"] == "reset")

    # Joining now, or resuming from the old epoch, on either node: the new epoch only.
    for node in room.nodes:
        fresh = (await receive_events(await node.ws(room.id), WAIT_S_MAX))[0]
        assert fresh["type"] == "snapshot" and fresh["epoch"] == new_epoch[1], fresh
        assert [c["text"] for c in fresh["recent"]] == ["after"], fresh
        resumed = await receive_events(await node.ws(room.id, since=f"{old_epoch}:{room.snapshot['seq'] + 12}"),
                                       WAIT_S_MAX)
        assert [e["type"] for e in resumed] == ["reset", "snapshot"], resumed
        assert resumed[0]["epoch"] == resumed[1]["epoch"] == new_epoch[1], resumed
        assert resumed[1]["seq"] == new_epoch[0], resumed
    restarts = sum(node.node.registry.get_sample_value("livecore_room_restarts_total") for node in room.nodes)
    assert restarts == 2  # once per node


async def test_valkey_restarted_with_its_append_only_file_goes_on_in_the_same_epoch(
    valkey: EmbeddedValkey, node_factory: NodeFactory, servers: Servers
) -> None:
    admin = redis.Redis.from_url(valkey.url)
    try:
        await admin.config_set("appendfsync", "always")  # every write on disk before it is acknowledged
    finally:
        await admin.aclose()
    room = await _room_on_two_nodes(node_factory, servers, valkey)
    _kill(valkey)
    await _bus_down(room)
    valkey.start()
    seen = await _bus_back(room, time.monotonic())
    _no_chat_twice_and_none_lost_silently(seen)
    for name, events in seen.items():
        assert not [e for e in events if e["type"] in ("reset", "snapshot")], (name, events)  # nothing was lost
        after = next(e for e in events if e.get("text") == "after")
        assert after["seq"] == room.snapshot["seq"] + 13, (name, events)  # right after the last chat before
    for node in room.nodes:
        fresh = (await receive_events(await node.ws(room.id), WAIT_S_MAX))[0]
        assert fresh["epoch"] == room.snapshot["epoch"], fresh


@pytest.mark.parametrize("renewed_elsewhere", [False, True], ids=["noticed-here", "renewed-by-another-node"])
async def test_a_log_cut_short_goes_on_in_a_new_epoch_from_where_it_is(
    valkey: EmbeddedValkey, node_factory: NodeFactory, servers: Servers, renewed_elsewhere: bool
) -> None:
    """The tail of a room's log lost (as an append-only file written once a second loses its last second), and the
    nodes' subscriptions cut: seq numbers the viewers already hold would name new events, so the room goes on in a
    new epoch from the seq the log is at. Whichever node notices first renews the epoch; a node that checks after
    that finds a new epoch whose first seq is not 1 (renewed-by-another-node forces that order)."""
    room = await _room_on_two_nodes(node_factory, servers, valkey)
    tag = room_tag(room.id)
    admin = redis.Redis.from_url(valkey.url)
    try:
        last_seq = int(await admin.get(f"lc:{tag}:seq"))
        kept = await admin.xrange(f"lc:{tag}:replay", "-", f"0-{last_seq - 3}")
        async with admin.pipeline(transaction=True) as pipe:  # the log as the file had it three writes ago
            pipe.delete(f"lc:{tag}:replay").set(f"lc:{tag}:seq", last_seq - 3)
            for entry_id, fields in kept:
                pipe.xadd(f"lc:{tag}:replay", fields, id=entry_id)
            if renewed_elsewhere:  # as Bus.renew_epoch does for a node that noticed it before these two
                pipe.set(f"lc:{tag}:epoch", "renewedelsewhere")
            await pipe.execute()
        await admin.client_kill_filter(_type="pubsub")
    finally:
        await admin.aclose()
    cut_at = time.monotonic()
    for node in room.nodes:  # each node's resubscription finds the log behind it
        await _until(lambda node=node: node.node.registry.get_sample_value("livecore_room_restarts_total") == 1,
                     "the node went on in a new epoch")
    seen = await _bus_back(room, cut_at)
    _no_chat_twice_and_none_lost_silently(seen)
    for name, events in seen.items():
        resets = [i for i, e in enumerate(events) if e["type"] == "reset"]
        assert len(resets) == 1, (name, events)
        reset, snapshot = events[resets[0]], events[resets[0] + 1]
        assert reset["reason"] == "bus-restarted" and reset["epoch"] == snapshot["epoch"] != room.snapshot["epoch"]
        assert snapshot["seq"] == last_seq - 3, (name, snapshot)
        after = next(e for e in events if e.get("text") == "after")
        assert after["seq"] == last_seq - 2, (name, events)


async def test_chat_queued_before_the_node_noticed_the_outage_is_answered_when_the_bus_refuses_it(
    valkey: EmbeddedValkey,
) -> None:
    """Chat accepted in the moment before the node saw Redis go (its queue was being drained): the publish fails,
    and each sender is told instead of its chat vanishing."""
    client = redis.Redis.from_url(valkey.url)
    outbox = Outbox(Bus(client, replay_events_max=100, dedup_event_ids_max=100), events_max=10)
    lost: list[str] = []
    _kill(valkey)
    outbox.start()
    try:
        for text in ("one", "two"):
            assert outbox.offer(1, {"type": "chat", "text": text}, lambda text=text: lost.append(text))
        await _until(lambda: len(lost) == 2, "both senders were told")
    finally:
        await outbox.stop()
        await client.aclose()
    assert lost == ["one", "two"]
