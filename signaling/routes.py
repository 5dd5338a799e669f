"""The room WebSocket endpoint: authenticate, join with a snapshot or resume, then read commands."""

from __future__ import annotations

import logging
from typing import ClassVar, Literal

from aiohttp import WSMsgType, web
from pydantic import BaseModel, Field

from livecore.accounts import get_account
from livecore.accounts.session import optional_account, require_account
from livecore.http import (
    ANONYMOUS,
    USER_SECURITY,
    Id,
    Parameters,
    Problem,
    operation,
    parse_body,
    parse_headers,
    parse_query,
    path_id,
)
from livecore.node import NODE
from livecore.outage import unreachable_part
from livecore.streams import Stream, get_stream
from signaling import moderation, protocol
from signaling.commands import CommandError, run_command, send_error, unavailable
from signaling.connection import Connection, Viewer, limit_unsent
from signaling.plane import Plane

log = logging.getLogger("livecore.ws")

PLANE = web.AppKey("plane", Plane)


def _case_insensitive(word: str) -> str:
    return "".join(f"[{c.upper()}{c.lower()}]" for c in word)


class Handshake(Parameters):
    """The WebSocket opening handshake (RFC 6455) as this server checks it; anything else is a plain HTTP request,
    answered 426 with `Upgrade: websocket`."""

    refusal: ClassVar[tuple[int, str]] = (426, "websocket-required")
    refusal_headers: ClassVar[dict[str, str]] = {"Upgrade": "websocket"}  # RFC 9110: what to upgrade to
    upgrade: str = Field(alias="Upgrade", pattern=rf"^\s*{_case_insensitive('websocket')}\s*$")
    connection: str = Field(alias="Connection", pattern=rf"^(.*[,\s])?{_case_insensitive('upgrade')}([,\s].*)?$",
                            description="a list that holds `upgrade`")
    key: str = Field(alias="Sec-WebSocket-Key", pattern=r"^[A-Za-z0-9+/]{22}==$",
                     description="16 random bytes in base64")
    version: Literal["13", "8", "7"] = Field(alias="Sec-WebSocket-Version")
    subprotocol: Literal["livecore.json", "livecore.msgpack"] = Field(
        default=protocol.JSON, alias="Sec-WebSocket-Protocol",
        description="one subprotocol: frames as JSON text or as MessagePack binary")


class RoomQuery(Parameters):
    refusal: ClassVar[tuple[int, str]] = (400, "bad-since")
    since: str | None = Field(default=None, pattern=r"^.+:[0-9]{1,18}$", description=(
        "<epoch>:<seq> of the last event seen: resume with what was missed (or a reset and a fresh snapshot)"))


@operation(
    "The room WebSocket: an upgrade to subprotocol livecore.json or livecore.msgpack; ?since=<epoch>:<seq> resumes. "
    "Its commands (chat, like, ping, gift, bid, moderation) and events are listed in signaling/protocol.py; a bid "
    "is answered by a private bid event, a refusal by an error event",
    tag="rooms", status=101, query=RoomQuery, headers=Handshake, security=(*USER_SECURITY, ANONYMOUS),
    reply_headers={"Upgrade": "websocket", "Connection": "upgrade", "Sec-WebSocket-Accept": "the key's answer"},
    problems={401: ["bad-token"], 404: ["stream-not-found"]},
)
async def room_socket(request: web.Request) -> web.StreamResponse:
    node, plane = request.app[NODE], request.app[PLANE]
    room_id = path_id(request, "stream-not-found", "room")
    stream = await get_stream(node.pool, room_id)
    if stream is None:
        raise Problem(404, "stream-not-found", f"there is no room {room_id}")
    account = await optional_account(request)
    since = parse_query(request, RoomQuery).since
    resume = protocol.parse_since(since) if since else None  # the model admits only what this parses
    parse_headers(request, Handshake)
    ws = web.WebSocketResponse(
        protocols=protocol.SUBPROTOCOLS, max_msg_size=node.settings.ws_frame_bytes_hard_max,
        compress=False, heartbeat=30.0,
    )
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
        await _serve(request, ws, plane, stream, viewer, account.roles if account else [], subprotocol, resume)
    except Exception as exc:
        # The upgrade is done: no HTTP error can be sent any more, only an error event and a close code.
        part = unreachable_part(exc)
        if part is None:
            log.exception("room socket failed for room %d", room_id)
            await ws.close(code=1011, message=b"internal error")
        else:
            log.warning("room socket for room %d closed: the %s is unreachable: %s", room_id, part, exc)
            await _send_error(ws, plane, unavailable(part))
            await ws.close(code=protocol.CLOSE_TRY_AGAIN_LATER, message=f"{part}-unavailable".encode())
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
    limit_unsent(request.transport, settings.ws_unsent_bytes_max)
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
    await _send_error(ws, plane, CommandError(code, f"the limit {limit} is reached", limit,
                                              getattr(plane.settings, limit)))
    await ws.close(code=close_code, message=code.encode())
    return ws


async def _send_error(ws: web.WebSocketResponse, plane: Plane, error: CommandError) -> None:
    """An `error` event straight on a socket that has no room connection (refused, or failed to join)."""
    plane.metrics.command_errors.labels(code=error.code).inc()
    event = {"type": "error", "ts": plane.clock.now_ms(), "command": None, "code": error.code,
             "detail": error.detail}
    if error.limit:
        event |= {"limit": error.limit, "limit_value": error.limit_value}
    subprotocol = ws.ws_protocol or protocol.JSON
    payload = protocol.encode_events(subprotocol, [event])
    if subprotocol == protocol.MSGPACK:
        await ws.send_bytes(payload)
    else:
        await ws.send_str(payload.decode())


class NewModerator(BaseModel):
    user_id: Id


@operation("Make a user a moderator of your room (the stream's creator only)", body=NewModerator, status=204,
           auth=True, tag="rooms",
           problems={403: ["not-your-stream"], 404: ["stream-not-found", "user-not-found"]})
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
