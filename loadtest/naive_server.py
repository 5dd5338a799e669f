"""The naive baseline the fan-out benchmark compares livecore with: the textbook aiohttp + Redis chat room.

One Redis pub/sub subscription per room per node; a chat command is numbered and PUBLISHed; every message that
comes back from Redis is sent with one `await ws.send_str(...)` per connection. It speaks the livecore.json
framing (arrays of events with type/seq/ts) so the same viewers can measure it. It does no authentication,
rate limiting, sampling, coalescing or backlog control, all of which only make it cheaper than a real server.

Run alone: python -m loadtest.naive_server --port 8090 --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import redis.asyncio as redis
import uvloop
from aiohttp import WSMsgType, web

SUBPROTOCOL = "livecore.json"

# Numbering and publishing in one step, so that two commands handled concurrently cannot publish out of order.
# The event arrives without its closing brace and leaves with its sequence number.
PUBLISH_NUMBERED = """
local seq = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', KEYS[2], ARGV[1] .. ',"seq":' .. seq .. '}')
return seq
"""


def channel_key(room: str) -> str:
    return f"naive:room:{room}"


def seq_key(room: str) -> str:
    return f"naive:seq:{room}"


def event_for(command: dict[str, Any], user: str) -> dict[str, Any] | None:
    """The room event a command produces, without seq (added by Redis); None for commands it ignores."""
    kind = command.get("type")
    if kind == "chat" and isinstance(command.get("text"), str):
        author = {"id": user, "name": user}
        return {"type": "chat", "id": uuid.uuid4().hex, "user": author, "text": command["text"]}
    if kind == "slow_mode":
        return {"type": "moderation", "action": "slow_mode", "seconds": int(command.get("seconds", 0))}
    return None


class NaiveNode:
    """Connections per room and one subscriber task per room."""

    def __init__(self, redis_url: str) -> None:
        self.redis = redis.from_url(redis_url)
        self.publish_numbered = self.redis.register_script(PUBLISH_NUMBERED)
        self.rooms: dict[str, set[web.WebSocketResponse]] = {}
        self.subscribers: dict[str, asyncio.Task[None]] = {}

    async def join(self, request: web.Request) -> web.WebSocketResponse:
        room = request.match_info["room"]
        user = request.query.get("token", "anonymous")[:32]
        ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,), max_msg_size=65536)
        await ws.prepare(request)
        if room not in self.subscribers:
            self.subscribers[room] = asyncio.create_task(self.fan_out(room))
        seq = int(await self.redis.get(seq_key(room)) or 0)
        snapshot = {"type": "snapshot", "epoch": "naive", "seq": seq, "ts": time.time_ns() // 1_000_000}
        await ws.send_str(orjson.dumps([snapshot]).decode())
        connections = self.rooms.setdefault(room, set())
        connections.add(ws)
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await self.publish(room, user, message.data)
        finally:
            connections.discard(ws)
        return ws

    async def publish(self, room: str, user: str, data: str) -> None:
        try:
            command = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        event = event_for(command, user) if isinstance(command, dict) else None
        if event is None:
            return
        event["ts"] = time.time_ns() // 1_000_000
        open_event = orjson.dumps(event)[:-1].decode()
        await self.publish_numbered(keys=[seq_key(room), channel_key(room)], args=[open_event])

    async def fan_out(self, room: str) -> None:
        """The naive part: one awaited send per event per connection."""
        async for payload in self.messages(room):
            frame = f"[{payload}]"
            for ws in list(self.rooms.get(room, ())):
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_str(frame)

    async def messages(self, room: str) -> AsyncIterator[str]:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(channel_key(room))
        async for message in pubsub.listen():
            if message["type"] == "message":
                yield message["data"].decode()

    async def close(self, _: web.Application) -> None:
        for task in self.subscribers.values():
            task.cancel()
        await self.redis.aclose()


async def healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok")


def make_app(redis_url: str) -> web.Application:
    node = NaiveNode(redis_url)
    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/ws/rooms/{room}", node.join)
    app.on_cleanup.append(node.close)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.naive_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    app = make_app(args.redis_url)
    loop = uvloop.new_event_loop()
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main()
