"""Test-side room WebSocket client helpers: read frames of events, send commands, in either subprotocol."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp

from signaling import protocol


async def receive_events(socket: aiohttp.ClientWebSocketResponse, timeout_s: float = 5.0) -> list[dict]:
    """The events of the next frame, whichever subprotocol the socket speaks."""
    message = await socket.receive(timeout=timeout_s)
    if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
        raise AssertionError(f"expected an event frame, got {message.type}: {message.data!r} {message.extra!r}")
    return protocol.decode_events(socket.protocol or protocol.JSON, message.data)


async def events_until(
    socket: aiohttp.ClientWebSocketResponse, done: Callable[[list[dict]], bool], timeout_s: float = 5.0
) -> list[dict]:
    """Collect events frame by frame until `done(collected)` holds."""
    collected: list[dict] = []
    while not done(collected):
        collected.extend(await receive_events(socket, timeout_s))
    return collected


async def send(socket: aiohttp.ClientWebSocketResponse, command: dict) -> None:
    payload = protocol.encode_command(socket.protocol or protocol.JSON, command)
    if socket.protocol == protocol.MSGPACK:
        await socket.send_bytes(payload)
    else:
        await socket.send_str(payload.decode())
