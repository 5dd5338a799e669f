"""Several nodes on one PostgreSQL and one Redis form one service: ordered chat across them, shared counts."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter

import aiohttp
import redis.asyncio as redis
from lbcluster import LbCluster, StartCluster
from livenode import NodeFactory, RunningNode, Servers
from roomclient import events_until, receive_events, send

from livecore.embedded import free_port
from signaling.bus import room_channel
from signaling.presence import REGISTRY, Presence, control_channel, node_tag

WAIT_S_MAX = 15.0


def _chats(events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"] == "chat"]


async def _live_viewers(node: RunningNode, room_id: int) -> int:
    async with node.http.get(f"{node.url}/api/streams/{room_id}") as r:
        return (await r.json())["viewers"]


async def _until(condition, timeout_s: float = WAIT_S_MAX):  # type: ignore[no-untyped-def]
    """Poll an async condition until it holds (a bounded wait for other processes, not a clock deadline)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await condition()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


async def test_chat_across_two_nodes_is_ordered_without_duplicates(node_factory: NodeFactory) -> None:
    a, b = await node_factory(), await node_factory()
    creator = await a.signup()
    room = (await a.create_stream(creator["token"]))["id"]
    talkers = [await a.signup(), await b.signup()]
    on_a = await a.ws(room, talkers[0]["token"])
    on_b = await b.ws(room, talkers[1]["token"])
    watcher_b = await b.ws(room)
    for socket in (on_a, on_b, watcher_b):
        await receive_events(socket)
    for i in range(8):
        await send(on_a, {"type": "chat", "text": f"a{i}"})
        await send(on_b, {"type": "chat", "text": f"b{i}"})
    seen = []
    for socket in (on_a, on_b, watcher_b):
        chats = _chats(await events_until(socket, lambda got: len(_chats(got)) >= 16))
        seen.append([(c["seq"], c["text"]) for c in chats])
    assert seen[0] == seen[1] == seen[2]
    seqs = [seq for seq, _ in seen[0]]
    assert seqs == sorted(set(seqs)) and len(seqs) == 16
    assert [t for _, t in seen[0] if t.startswith("a")] == [f"a{i}" for i in range(8)]
    assert a.plane.metrics.rooms._value.get() == 1 and b.plane.metrics.rooms._value.get() == 1


async def test_viewer_counts_add_up_across_nodes(node_factory: NodeFactory) -> None:
    a, b = await node_factory(presence_refresh_ms=100), await node_factory(presence_refresh_ms=100)
    creator = await a.signup()
    room = (await a.create_stream(creator["token"]))["id"]
    for node, count in ((a, 3), (b, 2)):
        for _ in range(count):
            await receive_events(await node.ws(room))
    assert await _until(lambda: _equals(_live_viewers(a, room), 5)) == 5
    async with a.http.get(f"{a.url}/api/live") as r:
        listed = {s["id"]: s["viewers"] for s in (await r.json())["streams"]}
    assert listed[room] == 5
    viewers_event = await events_until(a.sockets[-1], lambda got: any(e["type"] == "viewers" and e["count"] == 5
                                                                       for e in got))
    assert viewers_event


async def _equals(value, expected: int) -> int:  # type: ignore[no-untyped-def]
    got = await value
    return got if got == expected else 0


async def test_a_dead_node_stops_counting(servers: Servers, node_factory: NodeFactory) -> None:
    b = await node_factory(presence_refresh_ms=100, presence_ttl_ms=1000)
    port = free_port()
    env = {**os.environ, "LIVECORE_DATABASE_URL": servers.database_url, "LIVECORE_REDIS_URL": servers.redis_url,
           "LIVECORE_PRESENCE_REFRESH_MS": "100", "LIVECORE_PRESENCE_TTL_MS": "1000", "LIVECORE_SEED_DEMO": "0",
           "LIVECORE_WORKERS": "1"}
    a = subprocess.Popen([sys.executable, "-m", "livecore", "serve", "--port", str(port),
                          "--data-dir", str(servers.directory / "dead-node")], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        assert await _until(lambda: _healthy(b.http, url)), "the subprocess node did not start"
        creator = await b.signup()
        room = (await b.create_stream(creator["token"]))["id"]
        sockets = [await b.http.ws_connect(f"{url}/ws/rooms/{room}", protocols=["livecore.json"])
                   for _ in range(3)]
        await receive_events(await b.ws(room))
        assert await _until(lambda: _equals(_live_viewers(b, room), 4)) == 4
        a.send_signal(signal.SIGKILL)  # no goodbye: its counts must expire on their own
        a.wait(timeout=10)
        assert await _until(lambda: _equals(_live_viewers(b, room), 1)) == 1
        for socket in sockets:
            await socket.close()
    finally:
        if a.poll() is None:
            a.kill()


async def test_a_room_whose_last_viewer_left_counts_zero(servers: Servers) -> None:
    client = redis.Redis.from_url(servers.redis_url)
    node_id = f"test-{secrets.token_hex(4)}"
    presence = Presence(client, node_id, ttl_ms=5000)
    listening = client.pubsub()
    await listening.ssubscribe(control_channel(node_id))  # as a running node's bus does: it counts while listening
    room, now_ms = 10**12 + secrets.randbelow(10**6), int(time.time() * 1000)
    try:
        await presence.report(now_ms, Counter({room: 2}))
        assert await presence.viewer_counts(now_ms, [room]) == {room: 2}
        await presence.report(now_ms, Counter({room: 0}))  # the node still lists the room, at zero
        assert await presence.viewer_counts(now_ms, [room]) == {room: 0}
    finally:
        await presence.leave()
        await listening.aclose()
        await client.aclose()


async def _healthy(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(f"{url}/healthz") as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


async def test_a_gap_on_the_bus_is_filled_from_the_replay_stream(node_factory: NodeFactory) -> None:
    node = await node_factory()
    creator = await node.signup()
    room = (await node.create_stream(creator["token"]))["id"]
    socket = await node.ws(room, creator["token"])
    await receive_events(socket)
    channel = room_channel(room)
    # Lose two events the way a dropped pub/sub connection would: publish while this node is not listening.
    await node.plane.bus._subscriber.unsubscribe(channel)
    for text in ("lost 1", "lost 2"):
        await node.plane.publish(room, {"type": "chat", "user": {"id": 1, "name": "x"}, "text": text})
    await node.plane.bus._subscriber.subscribe(channel)
    await node.plane.publish(room, {"type": "chat", "user": {"id": 1, "name": "x"}, "text": "after"})
    chats = _chats(await events_until(socket, lambda got: len(_chats(got)) >= 3))
    assert [c["text"] for c in chats] == ["lost 1", "lost 2", "after"]
    assert node.node.registry.get_sample_value("livecore_bus_gaps_total") == 1


async def test_viewers_who_move_off_a_killed_node_are_not_counted_twice(
    start_cluster: StartCluster, servers: Servers
) -> None:
    # A long presence expiry: counts must be right well before a killed node's registration runs out.
    cluster = await start_cluster(presence_refresh_ms=200, presence_ttl_ms=30_000)
    doomed, survivor = cluster.nodes
    creator = await cluster.signup()
    room = (await cluster.create_stream(creator["token"]))["id"]
    ws_url = f"{cluster.url.replace('http', 'ws')}/ws/rooms/{room}"
    sockets: dict[str, list[aiohttp.ClientWebSocketResponse]] = {doomed.node_id: [], survivor.node_id: []}
    for node in (doomed, survivor, doomed, survivor):
        await cluster.steer_next_request_to(node)
        socket = await cluster.http.ws_connect(ws_url, protocols=["livecore.json"])
        await receive_events(socket)
        sockets[node.node_id].append(socket)
    total = len(sockets[doomed.node_id]) + len(sockets[survivor.node_id])
    assert await _until(lambda: _equals(_viewers_via(cluster, room), total)) == total

    doomed.kill()
    for index, socket in enumerate(sockets[doomed.node_id]):  # what a room client does: reconnect, on any node
        while (await socket.receive(timeout=WAIT_S_MAX)).type not in (aiohttp.WSMsgType.CLOSE,
                                                                    aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            pass
        sockets[doomed.node_id][index] = await cluster.http.ws_connect(ws_url, protocols=["livecore.json"])
        await receive_events(sockets[doomed.node_id][index])
    client = redis.Redis.from_url(servers.redis_url)
    try:
        readings = [await _viewers_via(cluster, room)]
        deadline = time.monotonic() + WAIT_S_MAX
        while int((await client.hget(f"lc:node:{node_tag(survivor.node_id)}:rooms", str(room))) or 0) < total:
            assert time.monotonic() < deadline, "the survivor never reported every viewer"
            readings.append(await _viewers_via(cluster, room))
        readings.append(await _viewers_via(cluster, room))  # the survivor has reported them all
        registered_until_ms = await client.zscore(REGISTRY, doomed.node_id)
        now_s, now_us = await client.time()
    finally:
        await client.aclose()
    assert registered_until_ms > now_s * 1000 + now_us / 1000  # the dead node's presence has not expired yet
    assert readings[-1] == total and max(readings) <= total, readings  # its viewers were never counted twice
    for socket in (*sockets[doomed.node_id], *sockets[survivor.node_id]):
        await socket.close()


async def _viewers_via(cluster: LbCluster, room: int) -> int:
    return (await cluster.stream(room))["viewers"]
