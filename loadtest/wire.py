"""The two wire formats the load tester speaks: livecore's room protocol (json or msgpack) and Socket.IO v5 over
Engine.IO v4 (the peers), each as pure functions from frame bytes to events and from commands to frame bytes.

A Socket.IO peer relays what it is sent as `42["<type>", {...}]` with the `seq` and `ts` it stamps, so a decoded
peer event has the same shape as a livecore one and the viewer counts both the same way.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgpack
import orjson

from loadtest import wsframe
from signaling import protocol

LIVECORE_JSON = protocol.JSON
LIVECORE_MSGPACK = protocol.MSGPACK
SOCKETIO = "socket.io"
WIRES = (LIVECORE_JSON, LIVECORE_MSGPACK, SOCKETIO)

SIO_PING = b"2"
SIO_PONG = b"3"
SIO_CONNECT = b"40"  # Socket.IO CONNECT to the default namespace
SIO_EVENT = b"42"


def subprotocols(wire: str) -> tuple[str, ...]:
    return () if wire == SOCKETIO else (wire,)


def opcode(wire: str) -> int:
    return wsframe.OP_BINARY if wire == LIVECORE_MSGPACK else wsframe.OP_TEXT


def encode_command(wire: str, command: dict[str, Any]) -> bytes:
    """One client command as a frame payload: livecore's `{type, ...}` or a Socket.IO event named after its type."""
    if wire == SOCKETIO:
        body = {key: value for key, value in command.items() if key != "type"}
        return SIO_EVENT + orjson.dumps([command["type"], body])
    return protocol.encode_command(wire, command)


def decode_events(wire: str, opcode_: int, payload: bytes) -> list[dict[str, Any]] | None:
    """The events in one frame; [] for a Socket.IO control packet; None if the frame cannot be read."""
    try:
        if wire == SOCKETIO:
            if not payload.startswith(SIO_EVENT):
                return []
            name, body = orjson.loads(payload[2:])
            return [{**body, "type": name}]
        events = msgpack.unpackb(payload) if opcode_ == wsframe.OP_BINARY else orjson.loads(payload)
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    return events if isinstance(events, list) else None


def control_reply(wire: str, payload: bytes) -> bytes | None:
    """What the client must answer to a control packet: Engine.IO's ping gets a pong."""
    return SIO_PONG if wire == SOCKETIO and payload == SIO_PING else None


def greeting(wire: str) -> bytes | None:
    """What a client sends once the WebSocket is open: Socket.IO's CONNECT to the default namespace (the server
    reads it after its own Engine.IO open packet, whichever arrives first)."""
    return SIO_CONNECT if wire == SOCKETIO else None


def room_url(base_ws_url: str, wire: str, room: str, token: str | None, since: str | None = None) -> str:
    """Where a viewer connects: livecore's room path, or the Socket.IO endpoint with the room as a query."""
    if wire == SOCKETIO:
        return f"{base_ws_url}/socket.io/?EIO=4&transport=websocket&room={quote(room)}"
    query = f"token={quote(token or '', safe='')}" + (f"&since={quote(since, safe='')}" if since else "")
    return f"{base_ws_url}/ws/rooms/{room}?{query}"
