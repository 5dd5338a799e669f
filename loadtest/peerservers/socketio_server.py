"""The python-socketio peer: an aiohttp Socket.IO server with its Redis manager, relaying each room event to the
room with a per-room `seq` and the server's `ts` (ms), as livecore stamps them.

    python -m loadtest.peerservers.socketio_server --port 8000 --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import time
from urllib.parse import parse_qs

import socketio
import uvloop
from aiohttp import web

RELAYED = ("chat", "like", "gift", "auction", "moderation")
PING_INTERVAL_S = 300  # the load tester's senders do not answer pings; a run is shorter than this


def build(redis_url: str) -> web.Application:
    manager = socketio.AsyncRedisManager(redis_url)
    server = socketio.AsyncServer(async_mode="aiohttp", client_manager=manager, ping_interval=PING_INTERVAL_S,
                                  cors_allowed_origins="*")
    rooms: dict[str, str] = {}
    seqs: dict[str, int] = {}

    @server.event
    async def connect(sid: str, environ: dict[str, str], auth: object = None) -> None:
        room = parse_qs(environ.get("QUERY_STRING", "")).get("room", ["room0"])[0]
        rooms[sid] = room
        await server.enter_room(sid, room)

    @server.event
    async def disconnect(sid: str, reason: object = None) -> None:
        rooms.pop(sid, None)

    def relay(kind: str) -> None:
        async def handler(sid: str, data: dict[str, object]) -> None:
            room = rooms.get(sid)
            if room is None:
                return
            seqs[room] = seqs.get(room, 0) + 1
            await server.emit(kind, {**data, "seq": seqs[room], "ts": time.time() * 1000}, room=room)

        server.on(kind, handler)

    for kind in RELAYED:
        relay(kind)
    app = web.Application()
    app.router.add_get("/healthz", lambda request: web.Response(text="ok"))
    server.attach(app)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    uvloop.install()
    web.run_app(build(args.redis_url), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
