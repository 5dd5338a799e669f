"""A clean restart of a `livecore serve` node: streams it left live without a publisher are ended once when it
starts again (their rooms hear it), streams another live node vouches for are left alone, and the directory lists
the creator again only when a publisher is back."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from livenode import NodeFactory, RunningNode, Servers
from mediapeers import publish
from roomclient import events_until, send
from servenode import Serve, clean_env


async def test_a_restart_ends_streams_left_without_a_publisher_once(
    servers: Servers, node_factory: NodeFactory, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    observer = await node_factory()  # a second node on the same servers, up throughout: the rooms are heard here
    env = clean_env(LIVECORE_DATABASE_URL=servers.database_url, LIVECORE_REDIS_URL=servers.redis_url,
                    LIVECORE_SEED_DEMO="no")
    data_dir = tmp_path / "data"
    nodes: list[Serve] = []

    def started(serve: Serve) -> Serve:
        nodes.append(serve)
        return serve

    try:
        first = started(Serve(data_dir, env=env))
        await first.wait_ready(http)
        creator = await observer.signup(roles=["creator"])
        token = creator["token"]
        # Created on the node that restarts and never published: it waits for its publisher until its own
        # deadline (tests/media/test_stream_liveness.py), restart or not.
        idle = await _go_live(http, first.url, token)
        sent = await _go_live(http, first.url, token)
        publisher = await publish(http, first.url, sent)
        assert publisher.status == 201
        elsewhere = await observer.create_stream(token)  # vouched for by the observer
        rooms = {stream["id"]: await observer.ws(stream["id"], token) for stream in (idle, sent, elsewhere)}
        heard: dict[int, list[dict]] = {room: [] for room in rooms}
        for room, socket in rooms.items():
            heard[room] += await events_until(socket, _joined)
        if not any(e["type"] in ("snapshot", "stream") and e.get("state") == "live" for e in heard[sent["id"]]):
            heard[sent["id"]] += await events_until(rooms[sent["id"]], _went_live)

        first.kill()  # a crash: nothing ends its streams on the way down
        await publisher.pc.close()
        live = await _live(observer)
        assert {sent["id"], elsewhere["id"]} <= live and idle["id"] not in live, "live only while someone publishes"

        second = started(Serve(data_dir, env=env, port=first.port))  # the same node (host and port) comes back
        await second.wait_ready(http)
        heard[sent["id"]] += await events_until(rooms[sent["id"]], lambda got: _ended(got) >= 1)
        live = await _live(observer)
        assert idle["id"] not in live and sent["id"] not in live and elsewhere["id"] in live
        refused = await publish(http, second.url, sent)  # the old stream is over; going live again is a new stream
        assert refused.status == 409

        again = await _go_live(http, second.url, token)
        rooms[again["id"]] = await observer.ws(again["id"], token)
        heard[again["id"]] = await events_until(rooms[again["id"]], _joined)
        back = await publish(http, second.url, again)
        assert back.status == 201
        heard[again["id"]] += await events_until(rooms[again["id"]], _went_live)
        assert again["id"] in await _live(observer)
        assert second.stop() == 0  # a clean stop ends the stream its publisher was sending
        await back.pc.close()

        third = started(Serve(data_dir, env=env, port=first.port))
        await third.wait_ready(http)
        for room, socket in rooms.items():
            marker = f"after the third start {room}"
            await send(socket, {"type": "chat", "text": marker})
            heard[room] += await events_until(socket, lambda got, m=marker: any(e.get("text") == m for e in got))
        assert {room: _ended(events) for room, events in heard.items()} == {
            idle["id"]: 0, sent["id"]: 1, elsewhere["id"]: 0, again["id"]: 1}
        assert await _live(observer) >= {elsewhere["id"]} and again["id"] not in await _live(observer)
        assert third.stop() == 0
    finally:
        for serve in nodes:
            serve.end()


async def _go_live(http: aiohttp.ClientSession, url: str, token: str) -> dict:
    async with http.post(f"{url}/api/streams", json={"title": "restart test"},
                         headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 201, await response.text()
        return await response.json()


async def _live(node: RunningNode) -> set[int]:
    async with node.http.get(f"{node.url}/api/live") as response:
        return {stream["id"] for stream in (await response.json())["streams"]}


def _joined(events: list[dict]) -> bool:
    return any(e["type"] == "snapshot" for e in events)


def _went_live(events: list[dict]) -> bool:
    return any(e["type"] == "stream" and e.get("state") == "live" for e in events)


def _ended(events: list[dict]) -> int:
    return sum(1 for e in events if e["type"] == "stream" and e.get("state") == "ended")
