"""What a client may ask of its room, each command checked against every limit before it is accepted."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from livecore.http import Problem
from livecore.outage import unreachable_part
from signaling import moderation
from signaling.connection import Connection
from signaling.plane import Plane
from signaling.protocol import ProtocolError


class CommandError(ProtocolError):
    """A refused command; `limit` names the setting that refused it, when one did."""

    def __init__(self, code: str, detail: str, limit: str | None = None, limit_value: int | None = None) -> None:
        super().__init__(code, detail)
        self.limit = limit
        self.limit_value = limit_value


Command = Callable[[Plane, Connection, int, dict[str, Any]], Awaitable[None]]


async def run_command(plane: Plane, conn: Connection, room_id: int, command: dict[str, Any]) -> None:
    """Carry out one decoded command; a refusal goes back to this connection as an `error` event."""
    kind = command["type"]
    handler = COMMANDS.get(kind)
    try:
        if handler is None:
            raise CommandError("unknown-command", f"there is no command {kind!r}")
        await handler(plane, conn, room_id, command)
    except ProtocolError as exc:
        send_error(plane, conn, kind, exc)
    except Exception as exc:
        part = unreachable_part(exc)
        if part is None:
            raise
        send_error(plane, conn, kind, unavailable(part))


def unavailable(part: str) -> CommandError:
    """The refusal of a command that needed the bus (Redis) or the database (PostgreSQL) while it was out."""
    what = {"bus": "the room's event bus", "database": "the database"}[part]
    return CommandError(f"{part}-unavailable", f"{what} cannot be reached right now; try again shortly")


def send_error(plane: Plane, conn: Connection, command: str | None, exc: ProtocolError) -> None:
    plane.metrics.command_errors.labels(code=exc.code).inc()
    error: dict[str, Any] = {
        "type": "error", "ts": plane.clock.now_ms(), "command": command, "code": exc.code, "detail": exc.detail
    }
    limit = getattr(exc, "limit", None)
    if limit:
        error["limit"] = limit
        value = getattr(exc, "limit_value", None)
        error["limit_value"] = value if value is not None else getattr(plane.settings, limit)
    conn.send_private([error])


async def chat(plane: Plane, conn: Connection, room_id: int, command: dict[str, Any]) -> None:
    user_id = _signed_in(conn)
    text = command.get("text")
    if not isinstance(text, str) or not text.strip():
        raise CommandError("invalid-field", "chat needs a non-empty string `text`")
    text = text.strip()
    if len(text) > plane.settings.chat_chars_max:
        raise CommandError("too-long", f"chat is limited to {plane.settings.chat_chars_max} characters",
                           "chat_chars_max")
    rules = _rules(plane, room_id)
    now_ms = plane.clock.now_ms()
    refusal = rules.chat_refusal(user_id, text, now_ms)
    if refusal:
        raise CommandError(*refusal)
    if not plane.chat_limits.take(user_id, now_ms):
        raise CommandError("rate-limited", "you are sending messages too fast", "chat_per_user_per_10s_max")
    if rules.slow_mode_s and not conn.viewer.is_moderator:
        wait_ms = await plane.slow_mode_wait_ms(room_id, user_id, rules.slow_mode_s)
        if wait_ms:
            raise CommandError("slow-mode", f"slow mode is on: wait {(wait_ms + 999) // 1000} s", "slow_mode_s",
                               rules.slow_mode_s)
    _bus_reachable(plane, room_id)
    event = {"type": "chat", "user": {"id": user_id, "name": conn.viewer.name}, "text": text}
    if not plane.publish_soon(room_id, event, lambda: send_error(plane, conn, "chat", unavailable("bus"))):
        raise CommandError("busy", "this node is overloaded; try again shortly", "publish_queue_events_max")


async def like(plane: Plane, conn: Connection, room_id: int, command: dict[str, Any]) -> None:
    user_id = _signed_in(conn)
    count = command.get("count", 1)
    cap = plane.settings.like_count_per_command_max
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= cap:
        raise CommandError("invalid-field", f"like count must be an integer from 1 to {cap}",
                           "like_count_per_command_max")
    _bus_reachable(plane, room_id)
    if not plane.like_limits.take(user_id, plane.clock.now_ms(), count):
        raise CommandError("rate-limited", "too many likes at once", "like_taps_per_user_per_s_max")
    plane.likes_pending[room_id] += count


async def gift(plane: Plane, conn: Connection, room_id: int, command: dict[str, Any]) -> None:
    """Send a gift through money (commerce/, via the node's hook); the room sees the `gift` event it publishes."""
    user_id = _signed_in(conn)
    key, gift_id = command.get("idempotency_key"), command.get("gift_id")
    if not isinstance(key, str) or not 1 <= len(key) <= 100 or not isinstance(gift_id, str):
        raise CommandError("invalid-field", "gift needs a string `gift_id` and an `idempotency_key` (1-100 chars)")
    count = _int_field(command, "count", 1, plane.settings.gift_count_per_send_max, "gift_count_per_send_max") \
        if "count" in command else 1
    if plane.node.gifts is None:
        raise CommandError("unavailable", "gifts are not available on this node")
    try:
        sent = await plane.node.gifts.send_gift(user_id, room_id, gift_id, count, key)
    except Problem as problem:
        raise _command_error(plane, problem) from problem
    conn.send_private([{"type": "wallet", "ts": plane.clock.now_ms(), "coins": sent["coins_balance"],
                        "idempotency_key": key, "transaction_id": sent["transaction_id"]}])


async def bid(plane: Plane, conn: Connection, room_id: int, command: dict[str, Any]) -> None:
    """Bid on the room's auction through money (commerce/, via the node's hook); the room sees the `auction`
    events it publishes, and this connection a private `bid` event with its outcome."""
    user_id = _signed_in(conn)
    key = command.get("idempotency_key")
    if not isinstance(key, str) or not 1 <= len(key) <= 100:
        raise CommandError("invalid-field", "bid needs an `idempotency_key` (1-100 chars)")
    auction_id = _int_field(command, "auction_id", 1, 2**62)
    amount = _int_field(command, "amount_cents", 1, 2**62)
    maximum = _int_field(command, "max_cents", 1, 2**62) if command.get("max_cents") is not None else None
    if plane.node.shop is None:
        raise CommandError("unavailable", "auctions are not available on this node")
    try:
        placed = await plane.node.shop.place_bid(user_id, room_id, auction_id, amount, maximum, key)
    except Problem as problem:
        raise _command_error(plane, problem) from problem
    conn.send_private([{"type": "bid", "ts": plane.clock.now_ms(), **placed}])


def _command_error(plane: Plane, problem: Problem) -> CommandError:
    rule, value = problem.extra.get("rule"), problem.extra.get("limit_value")
    named = rule if value is not None or hasattr(plane.settings, str(rule)) else None
    return CommandError(problem.slug, problem.detail, named, value)


async def ping(plane: Plane, conn: Connection, room_id: int, command: dict[str, Any]) -> None:
    conn.send_private([{"type": "pong", "ts": plane.clock.now_ms()}])


async def delete(plane: Plane, conn: Connection, room_id: int, command: dict[str, Any]) -> None:
    _moderator(conn)
    message_id = _int_field(command, "id", 1, 2**62)
    await plane.publish(room_id, {"type": "moderation", "action": "delete", "id": message_id,
                                  "by": conn.viewer.user_id})


async def timeout(plane: Plane, conn: Connection, room_id: int, command: dict[str, Any]) -> None:
    target = _target(plane, conn, room_id, command)
    seconds = _int_field(command, "seconds", 1, plane.settings.timeout_s_max, "timeout_s_max")
    until_ms = plane.clock.now_ms() + seconds * 1000
    await moderation.record_sanction(plane.node.pool, room_id, target, "timeout", until_ms, conn.viewer.user_id)
    await plane.publish(room_id, {"type": "moderation", "action": "timeout", "user_id": target,
                                  "until_ms": until_ms, "by": conn.viewer.user_id})


async def ban(plane: Plane, conn: Connection, room_id: int, command: dict[str, Any]) -> None:
    target = _target(plane, conn, room_id, command)
    await moderation.record_sanction(plane.node.pool, room_id, target, "ban", None, conn.viewer.user_id)
    await plane.publish(room_id, {"type": "moderation", "action": "ban", "user_id": target,
                                  "by": conn.viewer.user_id})


async def unban(plane: Plane, conn: Connection, room_id: int, command: dict[str, Any]) -> None:
    target = _target(plane, conn, room_id, command)
    await moderation.lift_sanctions(plane.node.pool, room_id, target)
    await plane.publish(room_id, {"type": "moderation", "action": "unban", "user_id": target,
                                  "by": conn.viewer.user_id})


async def slow_mode(plane: Plane, conn: Connection, room_id: int, command: dict[str, Any]) -> None:
    _moderator(conn)
    seconds = _int_field(command, "seconds", 0, plane.settings.slow_mode_s_max, "slow_mode_s_max")
    await moderation.record_settings(plane.node.pool, room_id, slow_mode_s=seconds)
    await plane.publish(room_id, {"type": "moderation", "action": "slow_mode", "seconds": seconds,
                                  "by": conn.viewer.user_id})


async def blocked_words(plane: Plane, conn: Connection, room_id: int, command: dict[str, Any]) -> None:
    _moderator(conn)
    words = command.get("words")
    if not isinstance(words, list) or not all(isinstance(w, str) and 0 < len(w.strip()) <= 50 for w in words):
        raise CommandError("invalid-field", "blocked_words needs `words`: a list of 1-50 character strings")
    if len(words) > plane.settings.blocked_words_max:
        raise CommandError("too-many", f"at most {plane.settings.blocked_words_max} blocked words",
                           "blocked_words_max")
    cleaned = sorted({w.strip().lower() for w in words})
    await moderation.record_settings(plane.node.pool, room_id, blocked_words=cleaned)
    # The words themselves stay off the wire; every node reloads them from PostgreSQL.
    await plane.publish(room_id, {"type": "moderation", "action": "blocked_words", "count": len(cleaned),
                                  "by": conn.viewer.user_id})


def _bus_reachable(plane: Plane, room_id: int) -> None:
    """Refuse up front what would only be queued for a bus known to be out (chat and likes are not retried); on a
    cluster, the room's shard of it."""
    if not plane.bus.available_for(room_id):
        raise unavailable("bus")


def _signed_in(conn: Connection) -> int:
    if not conn.viewer.user_id:
        raise CommandError("login-required", "log in to chat or like")
    return conn.viewer.user_id


def _moderator(conn: Connection) -> None:
    if not conn.viewer.is_moderator:
        raise CommandError("not-moderator", "only the creator and the room's moderators can do that")


def _rules(plane: Plane, room_id: int) -> moderation.RoomRules:
    rules = plane.rules(room_id)
    if rules is None:
        raise CommandError("not-joined", "the room is not open on this connection")
    return rules


def _target(plane: Plane, conn: Connection, room_id: int, command: dict[str, Any]) -> int:
    _moderator(conn)
    target = _int_field(command, "user_id", 1, 2**62)
    rules = _rules(plane, room_id)
    if target in (rules.creator_id, conn.viewer.user_id):
        raise CommandError("invalid-target", "the creator and you yourself cannot be sanctioned")
    return target


def _int_field(command: dict[str, Any], name: str, low: int, high: int, limit: str | None = None) -> int:
    value = command.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise CommandError("invalid-field", f"`{name}` must be an integer from {low} to {high}", limit)
    return value


COMMANDS: dict[str, Command] = {
    "chat": chat, "like": like, "gift": gift, "bid": bid, "ping": ping, "delete": delete, "timeout": timeout,
    "ban": ban, "unban": unban, "slow_mode": slow_mode, "blocked_words": blocked_words,
}
