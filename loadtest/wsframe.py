"""The client side of RFC 6455 as pure functions: the upgrade request, its answer, and frames.

The load tester speaks WebSocket itself instead of through aiohttp's client so that thousands of viewers cost
a few microseconds per frame each: the viewers must not be what limits the benchmark.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
from collections.abc import Sequence

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

HEAD_BYTES_MAX = 16384  # an upgrade answer longer than this is not one we can use


class HandshakeError(ConnectionError):
    """The server refused or botched the upgrade; `status` is its HTTP status (0 if none was readable)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}" if status else detail)
        self.status = status
        self.detail = detail


# One parsed frame header: (fin, opcode, payload start, payload end) in the buffer it was parsed from. A plain
# tuple rather than a dataclass because it is built for every frame every viewer receives.
Frame = tuple[bool, int, int, int]


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept value a server must answer `key` with."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def upgrade_request(host: str, port: int, target: str, key: str, subprotocols: Sequence[str]) -> bytes:
    """The HTTP/1.1 GET that opens a WebSocket; no extensions are offered, so frames arrive uncompressed."""
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if subprotocols:
        lines.append("Sec-WebSocket-Protocol: " + ", ".join(subprotocols))
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse_upgrade_response(head: bytes, key: str) -> str:
    """Check the server's answer to the upgrade (the bytes before the blank line); return the subprotocol."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise HandshakeError(0, f"not an HTTP response: {lines[0][:80]!r}")
    status = int(parts[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if status != 101:
        raise HandshakeError(status, parts[2] if len(parts) > 2 else "")
    if headers.get("sec-websocket-accept") != accept_key(key):
        raise HandshakeError(status, "wrong Sec-WebSocket-Accept")
    return headers.get("sec-websocket-protocol", "")


def client_frame(opcode: int, payload: bytes, mask: bytes | None = None) -> bytes:
    """A masked, unfragmented client-to-server frame (clients must mask, RFC 6455 section 5.3)."""
    mask = os.urandom(4) if mask is None else mask
    length = len(payload)
    first = 0x80 | opcode
    if length < 126:
        header = struct.pack("!BB", first, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, length)
    return header + mask + apply_mask(payload, mask)


def apply_mask(payload: bytes, mask: bytes) -> bytes:
    """XOR `payload` with the repeating 4-byte `mask`, done as one big-integer XOR rather than per byte."""
    if not payload:
        return b""
    length = len(payload)
    repeated = (mask * (length // 4 + 1))[:length]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(length, "big")


def next_frame(buffer: bytes | bytearray, offset: int) -> Frame | None:
    """The frame starting at `offset`, or None if the buffer does not hold all of it yet.

    Server frames are never masked; a masked one is answered by the caller closing with 1002.
    """
    available = len(buffer) - offset
    if available < 2:
        return None
    first, second = buffer[offset], buffer[offset + 1]
    length = second & 0x7F
    start = offset + 2
    if length == 126:
        if available < 4:
            return None
        length = (buffer[offset + 2] << 8) | buffer[offset + 3]
        start = offset + 4
    elif length == 127:
        if available < 10:
            return None
        (length,) = struct.unpack_from("!Q", buffer, offset + 2)
        start = offset + 10
    if second & 0x80:
        raise ValueError("the server sent a masked frame")
    end = start + length
    if end > len(buffer):
        return None
    return bool(first & 0x80), first & 0x0F, start, end


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()[:120]


def close_code(payload: bytes) -> int:
    """The status code in a close frame's payload; 1005 (no status) when it carries none."""
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
