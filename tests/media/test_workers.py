"""`livecore serve --workers 2` as an operator runs it: two worker processes share the port (the kernel spreads
connections), each a node of its own in the registry; room events reach viewers on both; WebRTC and HLS work
whichever worker a request reaches; a worker killed with -9 is logged and restarted as a new node, and its viewers
resume on the service. The supervisor starts the fulfilment simulator once and stops everything on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil
import redis.asyncio as redis
from livenode import Servers, unique_username
from mediapeers import publish, wait_for, watch
from roomclient import events_until, receive_events, send
from servenode import Serve, clean_env, livecore

from livecore.media.cluster import session_node

WAIT_S_MAX = 30.0
CONNECTIONS_MAX = 64  # fresh connections tried until the kernel has sent some to each worker
WORKER_LINE = re.compile(r"worker (\d+)\s+node (\S+) at (http://\S+) \(pid (\d+)\)")


@dataclass(frozen=True)
class WorkerNode:
    index: int
    node_id: str
    url: str
    pid: int


async def _until(condition, timeout_s: float = WAIT_S_MAX):  # type: ignore[no-untyped-def]
    """Poll an async condition until it holds (a bounded wait for other processes, not a clock deadline)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await condition()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


async def test_two_workers_share_the_port_and_a_killed_one_comes_back_as_a_new_node(
    servers: Servers, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    env = clean_env(LIVECORE_DATABASE_URL=servers.database_url, LIVECORE_REDIS_URL=servers.redis_url,
                    LIVECORE_SEED_DEMO="no", LIVECORE_HLS_SEGMENT_MS="1000", LIVECORE_MEDIA_OWNER_TTL_MS="2000",
                    LIVECORE_WORKERS="2")
    serve = Serve(tmp_path / "data", env=env)
    registry = redis.Redis.from_url(servers.redis_url)
    try:
        await _two_workers(serve, http, registry, env)
    finally:
        serve.end()
        await registry.aclose()


async def _two_workers(serve: Serve, http: aiohttp.ClientSession, registry: redis.Redis, env: dict[str, str]
                       ) -> None:
    await serve.wait_for_output(r"livecore is up with 2 workers")
    workers = [WorkerNode(int(m[1]), m[2], m[3], int(m[4])) for m in WORKER_LINE.finditer(serve.output())]
    assert [w.index for w in workers] == [0, 1] and len({w.node_id for w in workers}) == 2, serve.output()
    first, second = workers
    assert _children(serve) == ({first.pid, second.pid}, 1)  # one fulfilment simulator, from the supervisor
    assert await _nodes_answering(serve.url) == {first.node_id, second.node_id}
    for worker in workers:  # each its own node in the registry, at its own internal URL
        assert (await registry.get(f"lc:media:node:{worker.node_id}")).decode() == worker.url
    results = await _check_results(serve, env)  # `livecore check` knows a running service by its workers
    assert [results[row] for row in ("listen address", "workers", "public url", "internal url")] == ["ok"] * 4

    creator, talker = await _signup(http, serve.url), await _signup(http, serve.url)
    stream = await _create_stream(http, serve.url, creator["token"])
    room = stream["id"]
    viewers = {w.index: [await _ws(http, w.url, room) for _ in range(2)] for w in workers}
    snapshot = (await receive_events(viewers[1][0]))[0]
    for socket in [*viewers[0], *viewers[1][1:]]:
        await receive_events(socket)
    talking = await _ws(http, first.url, room, talker["token"])
    await receive_events(talking)
    await send(talking, {"type": "chat", "text": "to both workers"})
    for socket in [*viewers[0], *viewers[1]]:
        chats = await _chats_until(socket, ["to both workers"])
    last_seq = chats[-1]["seq"]

    publisher = await publish(http, first.url, stream)  # the publisher on the first worker
    assert publisher.status == 201 and session_node(publisher.location.rsplit("/", 1)[-1]) == first.node_id
    on_second = await watch(http, second.url, room)  # a viewer on the other: relayed between the workers
    try:
        assert on_second.status == 201, on_second.body
        assert session_node(on_second.location.rsplit("/", 1)[-1]) == second.node_id
        await wait_for(lambda: len(on_second.video_pts) >= 10, WAIT_S_MAX)
        await _hls_from(http, second.url, room)  # HLS from the worker that does not own the stream
        async with http.delete(f"{first.url}{on_second.location}") as r:  # its session's request on the other worker
            assert r.status == 200, await r.text()
    finally:
        await on_second.close()

    os.kill(second.pid, signal.SIGKILL)
    await serve.wait_for_output(  # logged with what ended and how
        rf"worker 1 \(node {re.escape(second.node_id)}, pid {second.pid}\) ended \(killed by SIGKILL\)")
    await send(talking, {"type": "chat", "text": "while one is down"})
    restarted = await _restarted(serve, second)
    assert restarted.node_id != second.node_id
    assert (await registry.get(f"lc:media:node:{restarted.node_id}")).decode() == restarted.url
    assert await _until(lambda: _gone(registry, second.node_id)), "the killed worker stayed in the registry"
    assert _children(serve) == ({first.pid, restarted.pid}, 1)

    for index, socket in enumerate(viewers[1]):  # what a room client does: reconnect to the service and resume
        await _closed(socket)
        viewers[1][index] = await _ws(http, serve.url, room, since=f"{snapshot['epoch']}:{last_seq}")
    await send(talking, {"type": "chat", "text": "after the restart"})
    for socket in viewers[1]:
        assert [c["text"] for c in await _chats_until(socket, ["after the restart"])] == [
            "while one is down", "after the restart"]
    for socket in viewers[0]:
        await _chats_until(socket, ["while one is down", "after the restart"])
    again = await watch(http, restarted.url, room)  # WebRTC viewers come back on the new worker too
    try:
        assert again.status == 201, again.body
        await wait_for(lambda: len(again.video_pts) >= 10, WAIT_S_MAX)
    finally:
        await again.close()
        await publisher.pc.close()
    for socket in [*viewers[0], *viewers[1], talking]:
        await socket.close()

    assert serve.stop() == 0
    assert not any(psutil.pid_exists(pid) for pid in (first.pid, restarted.pid))
    assert "fulfilment simulator stopped" in serve.output()


async def _restarted(serve: Serve, dead: WorkerNode) -> WorkerNode:
    """The worker the supervisor started in place of `dead`, once it serves (as its log says)."""
    serving = re.compile(rf'"msg":"worker {dead.index} serving: node (\S+) at (http://[\d.:]+) \(pid (\d+)\)"')
    deadline = time.monotonic() + WAIT_S_MAX
    while not (found := [m for m in serving.finditer(serve.output()) if int(m[3]) != dead.pid]):
        assert serve.process.poll() is None and time.monotonic() < deadline, serve.output()
        await asyncio.sleep(0.1)
    return WorkerNode(dead.index, found[0][1], found[0][2], int(found[0][3]))


async def _check_results(serve: Serve, env: dict[str, str]) -> dict[str, str]:
    """`livecore check` on the serving node's port and settings: check -> result."""
    done = await asyncio.to_thread(livecore, "check", "--port", str(serve.port), "--data-dir",
                                   str(serve.log_path.parent / "data"), env=env)
    return {name: result for name, result, _ in (re.split(r"\s{2,}", line, maxsplit=2)
                                                 for line in done.stdout.splitlines()[1:])}


def _children(serve: Serve) -> tuple[set[int], int]:
    """The supervisor's worker processes, and how many fulfilment simulators it runs."""
    children = psutil.Process(serve.process.pid).children()
    commands = [(child.pid, " ".join(child.cmdline())) for child in children]
    return ({pid for pid, command in commands if "livecore.worker" in command},
            sum("fulfilment_sim" in command for _, command in commands))


async def _nodes_answering(url: str) -> set[str]:
    """The nodes that answer /healthz on the one public port, over fresh connections until both have answered."""
    seen: set[str] = set()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as fresh:
        for _ in range(CONNECTIONS_MAX):
            async with fresh.get(f"{url}/healthz") as r:
                seen.add((await r.json())["node"])
            if len(seen) == 2:
                break
    return seen


async def _gone(registry: redis.Redis, node_id: str) -> bool:
    return await registry.get(f"lc:media:node:{node_id}") is None


async def _signup(http: aiohttp.ClientSession, url: str) -> dict:
    body = {"username": unique_username("wk"), "password": "correct horse battery", "birth_date": "1990-01-01",
            "region": "US", "roles": ["viewer", "creator"]}
    async with http.post(f"{url}/api/accounts", json=body) as r:
        assert r.status == 201, await r.text()
        return await r.json()


async def _create_stream(http: aiohttp.ClientSession, url: str, token: str) -> dict:
    async with http.post(f"{url}/api/streams", json={"title": "two workers"},
                         headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 201, await r.text()
        return await r.json()


async def _ws(http: aiohttp.ClientSession, url: str, room: int, token: str | None = None,
              since: str | None = None) -> aiohttp.ClientWebSocketResponse:
    params = {k: v for k, v in (("token", token), ("since", since)) if v}
    return await http.ws_connect(f"{url.replace('http', 'ws', 1)}/ws/rooms/{room}", params=params,
                                 protocols=["livecore.json"])


async def _chats_until(socket: aiohttp.ClientWebSocketResponse, texts: list[str]) -> list[dict]:
    """The chat events a socket receives until it has seen each of `texts`."""
    events = await events_until(socket, lambda got: all(
        any(e["type"] == "chat" and e["text"] == text for e in got) for text in texts), WAIT_S_MAX)
    return [e for e in events if e["type"] == "chat"]


async def _closed(socket: aiohttp.ClientWebSocketResponse) -> None:
    while (await socket.receive(timeout=WAIT_S_MAX)).type not in (
            aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
        pass


async def _hls_from(http: aiohttp.ClientSession, url: str, room: int) -> None:
    async with http.get(f"{url}/hls/{room}/index.m3u8") as r:
        assert r.status == 200, await r.text()
        playlist = await r.text()
    segment = next(line for line in playlist.splitlines() if line and not line.startswith("#"))
    async with http.get(f"{url}/hls/{room}/{segment}") as r:
        assert r.status == 200 and (await r.read())[0] == 0x47  # an MPEG-TS sync byte
