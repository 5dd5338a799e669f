"""livecore on a real Valkey Cluster (3 primaries, a replica each, see valkeycluster.py): two nodes serving rooms
whose keys live on different shards, with chat fan-out, resume with ?since=, presence counts and gifts; then one
primary killed with -9 while its rooms are watched, its replica promoted, and the rooms recovering.

The cluster refuses a command or script whose keys span slots (CROSSSLOT), so these flows also prove that every
script and multi-key command they run keeps to one slot.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from livenode import NodeFactory, RunningNode, Servers
from redis.crc import key_slot
from roomclient import receive_events, send
from valkeycluster import ValkeyCluster

from commerce.providers import SUCCEEDING_CARD
from livecore.embedded import EmbeddedValkey
from signaling.bus import room_tag

WAIT_S_MAX = 40.0  # generous: other test runs share the machine, and a failover takes a few seconds
ROOMS_TRIED_MAX = 60  # streams created at most to find a room on every shard
RESENDS_MAX = 30
RESEND_PAUSE_S = 0.25


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyCluster]:
    valkeys = ValkeyCluster(tmp_path_factory.mktemp("valkey-cluster"))
    try:
        yield valkeys.start()
    finally:
        valkeys.stop()


@pytest.fixture
def doomed_cluster(tmp_path: Path) -> Iterator[ValkeyCluster]:
    """A cluster of the test's own, for killing a primary."""
    valkeys = ValkeyCluster(tmp_path / "valkey-cluster")
    try:
        yield valkeys.start()
    finally:
        valkeys.stop()


@pytest.fixture
def partial_cluster(tmp_path: Path) -> Iterator[ValkeyCluster]:
    """A cluster of the test's own with no replicas, whose shards serve on while another is down."""
    valkeys = ValkeyCluster(tmp_path / "valkey-cluster")
    try:
        yield valkeys.start(replicas=0, full_coverage=False)
    finally:
        valkeys.stop()


async def _until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT_S_MAX
    while not await condition():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.1)


async def _events_within(socket: aiohttp.ClientWebSocketResponse, done: Callable[[list[dict]], bool],
                         seconds: float) -> list[dict]:
    """Events until `done(collected)` holds, for at most `seconds` in all (count updates keep a socket busy, so a
    per-frame timeout alone would wait forever for an event that never comes); TimeoutError after."""
    collected: list[dict] = []
    async with asyncio.timeout(seconds):
        while not done(collected):
            collected.extend(await receive_events(socket, seconds))
    return collected


def _slot(room_id: int) -> int:
    return key_slot(f"lc:{room_tag(room_id)}:seq".encode())


async def _rooms_on_every_shard(node: RunningNode, cluster: ValkeyCluster, token: str) -> dict[int, int]:
    """One live room per primary: {primary port: room id}."""
    rooms: dict[int, int] = {}
    primaries = {n.port for n in cluster.primaries()}
    for _ in range(ROOMS_TRIED_MAX):
        room = (await node.create_stream(token))["id"]
        rooms.setdefault(cluster.primary_of(_slot(room)).port, room)
        if set(rooms) == primaries:
            return rooms
    raise AssertionError(f"no room on every shard after {ROOMS_TRIED_MAX} streams: {rooms}")


async def _nodes_on(cluster: ValkeyCluster, node_factory: NodeFactory, servers: Servers) -> list[RunningNode]:
    on = Servers(servers.database_url, cluster.url, servers.directory)
    return [await node_factory(on=on, chat_per_user_per_10s_max=100, presence_refresh_ms=200) for _ in range(2)]


async def _viewers(node: RunningNode, room: int) -> int:
    async with node.http.get(f"{node.url}/api/streams/{room}") as response:
        assert response.status == 200, await response.text()
        return (await response.json())["viewers"]


def _texts(events: list[dict]) -> list[str]:
    return [e["text"] for e in events if e["type"] == "chat"]


async def _api(node: RunningNode, method: str, path: str, token: str, body: dict) -> tuple[int, dict]:
    async with node.http.request(method, node.url + path, json=body,
                                 headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json(content_type=None)


async def _buy_coins(node: RunningNode, token: str) -> None:
    status, purchase = await _api(node, "POST", "/api/coins/purchases", token,
                                  {"package_id": "coins_100", "idempotency_key": os.urandom(8).hex()})
    assert status == 201, purchase
    status, paid = await _api(node, "POST", f"/api/payments/local/{purchase['id']}/confirm", token,
                              {"card_number": SUCCEEDING_CARD})
    assert status == 200 and paid["state"] == "succeeded", paid


async def test_two_nodes_serve_rooms_on_every_shard(cluster: ValkeyCluster, node_factory: NodeFactory,
                                                    servers: Servers) -> None:
    a, b = await _nodes_on(cluster, node_factory, servers)
    creator, talker = await a.signup(), await a.signup()
    await _buy_coins(a, talker["token"])
    rooms = await _rooms_on_every_shard(a, cluster, creator["token"])
    for port, room in rooms.items():
        speaking = await a.ws(room, talker["token"])
        watching = await b.ws(room)
        snapshot = (await receive_events(watching))[0]
        await receive_events(speaking)
        assert snapshot["type"] == "snapshot"
        # Fan-out across nodes through the room's shard.
        await send(speaking, {"type": "chat", "text": f"hello {port}"})
        seen = await _events_within(watching, lambda got, p=port: f"hello {p}" in _texts(got), WAIT_S_MAX)
        last = seen[-1]
        # Presence counts both viewers, each on its own node, read through either node.
        await _until(lambda r=room: _equals(_viewers(b, r), 2), f"room {room} counts its two viewers")
        # Resume: the watcher leaves, misses two chats and a gift, and comes back with ?since=.
        await watching.close()
        for text in ("missed 1", "missed 2"):
            await send(speaking, {"type": "chat", "text": text})
        await _events_within(speaking, lambda got: "missed 2" in _texts(got), WAIT_S_MAX)
        status, gift = await _api(a, "POST", f"/api/streams/{room}/gifts", talker["token"],
                                  {"gift_id": "rose", "idempotency_key": os.urandom(8).hex()})
        assert status == 200, gift
        resumed = await b.ws(room, since=f"{snapshot['epoch']}:{last['seq']}")
        got = await _events_within(resumed, lambda got: any(e["type"] == "gift" for e in got), WAIT_S_MAX)
        assert _texts(got) == ["missed 1", "missed 2"], got
        assert [e["type"] for e in got if e["type"] in ("reset", "snapshot")] == [], got
        seqs = [e["seq"] for e in got if "seq" in e]
        assert seqs == sorted(seqs) and seqs[0] == last["seq"] + 1, seqs
        await speaking.close()
        await resumed.close()


async def _equals(value: Awaitable[object], expected: object) -> bool:
    return await value == expected


async def test_rooms_recover_when_a_primary_is_killed_and_its_replica_promoted(
        doomed_cluster: ValkeyCluster, node_factory: NodeFactory, servers: Servers) -> None:
    a, b = await _nodes_on(doomed_cluster, node_factory, servers)
    creator, talker = await a.signup(), await a.signup()
    rooms = await _rooms_on_every_shard(a, doomed_cluster, creator["token"])
    victim = doomed_cluster.primaries()[0]
    doomed_room = rooms[victim.port]
    spared_room = next(room for port, room in rooms.items() if port != victim.port)
    sockets = {}
    for room in (doomed_room, spared_room):
        sockets[room] = (await a.ws(room, talker["token"]), await b.ws(room))
        for socket in sockets[room]:
            await receive_events(socket)
    _kill(victim)
    killed_at = time.monotonic()
    await _until(lambda: _async(not a.plane.bus.available_for(doomed_room)), "node a noticed its shard is gone")
    # Meanwhile: chat in the doomed room is answered with bus-unavailable (or reaches everyone once the replica took
    # over), never silently dropped; the spared room's shard keeps working.
    speaking, watching = sockets[doomed_room]
    await send(speaking, {"type": "chat", "text": "during"})
    answer = await _events_within(speaking, lambda got: any(e["type"] == "error" or e.get("text") == "during"
                                                          for e in got), WAIT_S_MAX)
    errors = [e for e in answer if e["type"] == "error"]
    assert not errors or (errors[0]["code"] == "bus-unavailable" and errors[0]["command"] == "chat"), errors
    spared_speaking, spared_watching = sockets[spared_room]
    await send(spared_speaking, {"type": "chat", "text": "spared"})
    await _events_within(spared_watching, lambda got: "spared" in _texts(got), WAIT_S_MAX)
    # The replica is promoted; the nodes move the room's channel to it and chat flows again.
    await _until(lambda: _async(victim.port not in {n.port for n in doomed_cluster.primaries()}),
                 "the replica took over")
    promoted_s = time.monotonic() - killed_at
    for attempt in range(RESENDS_MAX):
        await send(speaking, {"type": "chat", "text": f"after {attempt}"})
        try:
            got = await _events_within(watching, lambda got: any(t.startswith("after") for t in _texts(got)), 2.0)
            break
        except TimeoutError:
            await asyncio.sleep(RESEND_PAUSE_S)
    else:
        raise AssertionError("chat never came back in the room whose primary was killed")
    recovered_s = time.monotonic() - killed_at
    # A viewer count (node-local, no seq) may come at any time; of the room's events a snapshot comes after a reset.
    room_events = [e["type"] for e in got if e["type"] != "viewers"]
    assert "snapshot" not in room_events or room_events[0] == "reset", got
    await _until(lambda: _async(a.plane.bus.available and b.plane.bus.available), "both nodes' bus is whole again")
    print(f"replica promoted {promoted_s:.2f} s after the primary was killed; chat delivered across nodes again "
          f"{recovered_s:.2f} s after")


async def test_a_shard_that_is_down_keeps_out_only_its_own_rooms_events(
        partial_cluster: ValkeyCluster, node_factory: NodeFactory, servers: Servers) -> None:
    """Events of rooms on other shards go out while one shard is down, even when they share a batch to the bus with
    the down shard's (chat) or wait behind its events in the outbox (gifts); the down shard's gifts stay committed
    and go out once it is back."""
    node = await node_factory(on=Servers(servers.database_url, partial_cluster.url, servers.directory),
                              chat_per_user_per_10s_max=100)
    creator, sender = await node.signup(), await node.signup()
    await _buy_coins(node, sender["token"])
    rooms = await _rooms_on_every_shard(node, partial_cluster, creator["token"])
    victim = partial_cluster.primaries()[0]
    doomed_room = rooms[victim.port]
    spared_room = next(room for port, room in rooms.items() if port != victim.port)
    watching, doomed_watching = await node.ws(spared_room), await node.ws(doomed_room)
    for socket in (watching, doomed_watching):
        await receive_events(socket)
    _kill(victim)
    await _until(lambda: _async(not node.plane.bus.available_for(doomed_room)), "the node noticed its shard is gone")

    # Chat: queued in the same turn, so both go to the bus in one batch; only the doomed room's is refused.
    lost: list[int] = []
    for room in (doomed_room, spared_room):
        assert node.plane.publish_soon(room, {"type": "chat", "text": f"chat in {room}"}, lambda r=room: lost.append(r))
    await _events_within(watching, lambda got: f"chat in {spared_room}" in _texts(got), WAIT_S_MAX)
    await _until(lambda: _async(lost == [doomed_room]), "the doomed room's sender was told")

    # Gifts: committed in PostgreSQL whatever the bus does; the doomed room's is older, so the relay meets it first.
    for room in (doomed_room, spared_room):
        status, gift = await _api(node, "POST", f"/api/streams/{room}/gifts", sender["token"],
                                  {"gift_id": "rose", "idempotency_key": os.urandom(8).hex()})
        assert status == 200, gift
    await _events_within(watching, lambda got: any(e["type"] == "gift" for e in got), WAIT_S_MAX)
    await _until(lambda: _equals(_waiting_rooms(node), [doomed_room]),  # the relay deletes a row after its publish
                 "only the doomed room's gift waits, committed")

    victim.start()  # back empty (no append-only file), serving its slots again
    await _until(lambda: _equals(node.node.pool.fetchval("SELECT count(*) FROM room_event_outbox"), 0),
                 "the doomed room's gift went out once its shard was back")
    await watching.close()
    await doomed_watching.close()


async def _waiting_rooms(node: RunningNode) -> list[int]:
    return [r["room_id"] for r in await node.node.pool.fetch("SELECT room_id FROM room_event_outbox ORDER BY id")]


async def _async(value: bool) -> bool:
    return value


def _kill(valkey: EmbeddedValkey) -> None:
    assert valkey.process is not None
    os.kill(valkey.process.pid, signal.SIGKILL)
    valkey.process.wait()
