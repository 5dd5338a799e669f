"""The room WebSocket endpoint: authenticate, join with a snapshot or resume, then read commands."""

from __future__ import annotations

import logging

from aiohttp import WSMsgType, web
from pydantic import BaseModel, Field

from livecore.accounts import get_account
from livecore.accounts.session import optional_account, require_account
from livecore.http import Problem, operation, parse_body, path_id
from livecore.node import NODE
from livecore.streams import Stream, get_stream
from signaling import moderation, protocol
from signaling.commands import CommandError, run_command, send_error
from signaling.connection import Connection, Viewer
from signaling.plane import Plane

log = logging.getLogger("livecore.ws")

PLANE = web.AppKey("plane", Plane)


@operation(
    "The room WebSocket (subprotocols livecore.json and livecore.msgpack; ?since=<epoch>:<seq> resumes)",
    tag="rooms", responses={101: "Switching to the WebSocket protocol"},
)
async def room_socket(request: web.Request) -> web.StreamResponse:
    node, plane = request.app[NODE], request.app[PLANE]
    room_id = path_id(request, "stream-not-found", "room")
    stream = await get_stream(node.pool, room_id)
    if stream is None:
        raise Problem(404, "stream-not-found", f"there is no room {room_id}")
    account = await optional_account(request)
    since = _since(request)
    ws = web.WebSocketResponse(
        protocols=protocol.SUBPROTOCOLS, max_msg_size=node.settings.ws_frame_bytes_hard_max,
        compress=False, heartbeat=30.0,
    )
    if not ws.can_prepare(request).ok:
        raise Problem(400, "websocket-required", "this endpoint speaks only the WebSocket protocol")
    await ws.prepare(request)
    subprotocol = ws.ws_protocol or protocol.JSON
    viewer = Viewer(
        user_id=account.id if account else 0,
        name=account.display_name if account else "guest",
    )
    if account and not await plane.presence.acquire_connection(
        node.clock.now_ms(), account.id, node.settings.connections_per_user_max
    ):
        return await _refuse(ws, plane, "too-many-connections", "connections_per_user_max",
                             protocol.CLOSE_TOO_MANY_CONNECTIONS)
    try:
        await _serve(request, ws, plane, stream, viewer, account.roles if account else [], subprotocol, since)
    except Exception:
        # The upgrade is done: no HTTP error can be sent any more, only a close code.
        log.exception("room socket failed for room %d", room_id)
        await ws.close(code=1011, message=b"internal error")
    finally:
        if account:
            await plane.presence.release_connection(account.id)
    return ws


async def _serve(
    request: web.Request, ws: web.WebSocketResponse, plane: Plane, stream: Stream, viewer: Viewer,
    roles: list[str], subprotocol: str, since: tuple[str, int] | None,
) -> None:
    settings = plane.settings
    room_id = stream.id
    assert request.transport is not None
    conn = Connection(
        transport=request.transport, subprotocol=subprotocol, viewer=viewer, metrics=plane.metrics,
        write_buffer_bytes_high=settings.write_buffer_bytes_high, backlog_events_max=settings.backlog_events_max,
    )
    room = await plane.hub.attach(room_id, conn)
    try:
        rules = room.rules
        assert rules is not None
        if viewer.user_id in rules.banned:
            conn.joining = False
            send_error(plane, conn, None, CommandError("banned", "you are banned from this room"))
            conn.close(protocol.CLOSE_BANNED, "banned from this room")
            return
        conn.viewer = Viewer(viewer.user_id, viewer.name, bool(viewer.user_id) and rules.is_moderator(
            viewer.user_id, roles))
        first, position_seq = await plane.join_events(room_id, conn.viewer, since)
        conn.finish_join(first, position_seq)
        await _read_commands(ws, plane, conn, room_id)
    finally:
        await plane.hub.detach(room_id, conn)


async def _read_commands(ws: web.WebSocketResponse, plane: Plane, conn: Connection, room_id: int) -> None:
    frame_max = plane.settings.ws_frame_bytes_max
    async for message in ws:
        if conn.closed:
            break
        if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            continue
        size = len(message.data)
        if size > frame_max:
            send_error(plane, conn, None, CommandError(
                "frame-too-large", f"frames are limited to {frame_max} bytes; this one had {size}",
                "ws_frame_bytes_max"))
            continue
        try:
            command = protocol.decode_command(conn.subprotocol, message.data)
        except protocol.ProtocolError as exc:
            send_error(plane, conn, None, exc)
            continue
        await run_command(plane, conn, room_id, command)


async def _refuse(
    ws: web.WebSocketResponse, plane: Plane, code: str, limit: str, close_code: int
) -> web.StreamResponse:
    """Answer a connection over a limit with an error event naming it, then close with `close_code`."""
    plane.metrics.command_errors.labels(code=code).inc()
    error = {"type": "error", "ts": plane.clock.now_ms(), "command": None, "code": code, "limit": limit,
             "limit_value": getattr(plane.settings, limit), "detail": f"the limit {limit} is reached"}
    subprotocol = ws.ws_protocol or protocol.JSON
    payload = protocol.encode_events(subprotocol, [error])
    if subprotocol == protocol.MSGPACK:
        await ws.send_bytes(payload)
    else:
        await ws.send_str(payload.decode())
    await ws.close(code=close_code, message=code.encode())
    return ws


def _since(request: web.Request) -> tuple[str, int] | None:
    raw = request.query.get("since")
    if not raw:
        return None
    try:
        return protocol.parse_since(raw)
    except protocol.ProtocolError as exc:
        raise Problem(400, "bad-since", exc.detail) from exc


class NewModerator(BaseModel):
    user_id: int = Field(gt=0)


@operation("Make a user a moderator of your room (the stream's creator only)", body=NewModerator, status=204,
           auth=True, tag="rooms")
async def add_moderator(request: web.Request) -> web.Response:
    node, plane = request.app[NODE], request.app[PLANE]
    account = await require_account(request)
    stream = await get_stream(node.pool, path_id(request, "stream-not-found", "room"))
    if stream is None:
        raise Problem(404, "stream-not-found", f"there is no room {request.match_info['id']}")
    if stream.creator_id != account.id:
        raise Problem(403, "not-your-stream", "only the stream's creator can appoint moderators")
    body = await parse_body(request, NewModerator)
    if await get_account(node.pool, body.user_id) is None:
        raise Problem(404, "user-not-found", f"there is no user {body.user_id}")
    await moderation.add_moderator(node.pool, stream.id, body.user_id)
    await plane.publish(stream.id, {"type": "moderation", "action": "moderator", "user_id": body.user_id,
                                    "by": account.id})
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/ws/rooms/{id}", room_socket)
    app.router.add_post("/api/rooms/{id}/moderators", add_moderator)
