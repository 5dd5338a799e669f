"""The room WebSocket wire format: message shapes, the two subprotocols, close codes and frame bytes.

Pure functions only; no I/O. Server to client, every frame is an array of one or more events. Client to server,
every frame is one command object `{type, ...}`.

Events (server -> client); room events carry `seq` (per room, per epoch) and `ts` (server ms):
  snapshot      {epoch, seq, ts, room, viewers, likes, state, slow_mode_s, recent: [chat...], you: {...},
                 pinned: product | null, pin_version, auction: {terms, state, bids: [...]} | null}
  reset         {epoch, seq, ts, reason} followed in the same frame by a fresh snapshot
                reason: epoch-changed | from-the-future | window-exceeded (a resume) | bus-restarted (the bus
                lost the room's log: the room goes on at seq 0 of a new epoch)
  chat          {seq, ts, id, user: {id, name}, text}              lossy above the room's display rate
  like          {seq, ts, count, total}                            lossy: aggregated taps since the last one
  viewers       {ts, count}                                        lossy, node-local: latest wins, no seq
  stream        {seq, ts, state: "live" | "ended"}                 must-deliver
  moderation    {seq, ts, action, ...}                             must-deliver
                action: delete {id} | timeout {user_id, until_ms} | ban {user_id} | unban {user_id}
                        | slow_mode {seconds} | blocked_words {count}
  gift, gift_end {seq, ts, ...}                                    must-deliver (commerce/gifts.py)
  product_pinned {seq, ts, product | null, pin_version}            must-deliver (commerce/merch/pins.py)
  auction       {seq, ts, action, auction_id, version, state, price_cents, leader, ends_at, ...}
                                                                   must-deliver (commerce/auctions/events.py)
                action: opened | bid | outbid | extended | closed | won | unsold
  wallet, bid   {ts, idempotency_key, ...}                         to the one connection whose gift or bid it was
  error         {ts, command, code, limit?, detail}                to the one connection that caused it
                code bus-unavailable / database-unavailable: Redis / PostgreSQL could not be reached for it
Commands (client -> server):
  chat {text} | like {count} | ping | delete {id} | timeout {user_id, seconds} | ban {user_id}
  | unban {user_id} | slow_mode {seconds} | blocked_words {words: [...]}
  | gift {gift_id, count?, idempotency_key} | bid {auction_id, amount_cents, max_cents?, idempotency_key}
"""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import orjson

JSON = "livecore.json"
MSGPACK = "livecore.msgpack"
SUBPROTOCOLS = (JSON, MSGPACK)

# Close codes in the private range 4000-4999 (RFC 6455 section 7.4.2).
CLOSE_SLOW_CONSUMER = 4008  # the must-deliver backlog overflowed; resume with ?since=
CLOSE_BANNED = 4003
CLOSE_TOO_MANY_CONNECTIONS = 4029
CLOSE_GOING_AWAY = 1001
CLOSE_TRY_AGAIN_LATER = 1013  # the bus or the database is unreachable; reconnect (and resume) shortly

MUST_DELIVER = frozenset({"stream", "moderation", "gift", "gift_end", "auction", "product_pinned", "reset",
                          "snapshot"})

OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8


class ProtocolError(ValueError):
    """A client command that cannot be understood; `code` is the stable error code sent back."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def is_must_deliver(event: dict[str, Any]) -> bool:
    return event["type"] in MUST_DELIVER


def encode_events(subprotocol: str, events: list[dict[str, Any]]) -> bytes:
    """One frame payload holding `events`, in the connection's subprotocol."""
    if subprotocol == MSGPACK:
        return msgpack.packb(events, use_bin_type=True)
    return orjson.dumps(events)


def decode_events(subprotocol: str, payload: bytes | str) -> list[dict[str, Any]]:
    """The inverse of `encode_events`, for clients and tests."""
    if subprotocol == MSGPACK:
        return msgpack.unpackb(payload, raw=False)
    return orjson.loads(payload)


def decode_command(subprotocol: str, payload: bytes | str) -> dict[str, Any]:
    """Parse one client command, raising ProtocolError with a code the client can act on."""
    try:
        if subprotocol == MSGPACK:
            if isinstance(payload, str):
                raise ProtocolError("bad-frame", "livecore.msgpack expects binary frames")
            command = msgpack.unpackb(payload, raw=False, strict_map_key=True)
        else:
            command = orjson.loads(payload)
    except ProtocolError:
        raise
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, TypeError) as exc:
        raise ProtocolError("malformed", f"could not decode the frame as {subprotocol}: {exc}") from exc
    if not isinstance(command, dict):
        raise ProtocolError("malformed", "a command must be an object with a `type`")
    kind = command.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("malformed", "a command must have a string `type`")
    return command


def encode_command(subprotocol: str, command: dict[str, Any]) -> bytes:
    """Client side: one command as a frame payload."""
    if subprotocol == MSGPACK:
        return msgpack.packb(command, use_bin_type=True)
    return orjson.dumps(command)


def frame_opcode(subprotocol: str) -> int:
    return OP_BINARY if subprotocol == MSGPACK else OP_TEXT


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """An unmasked, unfragmented server-to-client WebSocket frame (RFC 6455 section 5.2)."""
    length = len(payload)
    first = 0x80 | opcode
    if length < 126:
        header = struct.pack("!BB", first, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", first, 126, length)
    else:
        header = struct.pack("!BBQ", first, 127, length)
    return header + payload


def close_frame(code: int, reason: str) -> bytes:
    return ws_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode()[:120])


def parse_since(raw: str) -> tuple[str, int]:
    """`?since=<epoch>:<seq>` as (epoch, seq); ProtocolError if it is not that shape."""
    epoch, sep, seq = raw.rpartition(":")
    if not sep or not epoch or not (seq.isascii() and seq.isdigit()):
        raise ProtocolError("bad-since", "since must be <epoch>:<seq> as given by the last snapshot or event")
    return epoch, int(seq)
