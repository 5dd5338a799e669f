"""Room moderation: who may moderate, bans, timeouts, slow mode and blocked words.

PostgreSQL is the record; each node keeps a room's rules in memory while it has viewers there and updates them
from the `moderation` events every node receives on the bus.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import asyncpg

MODERATOR_ROLES = frozenset({"moderator", "admin"})


@dataclass
class RoomRules:
    room_id: int
    creator_id: int
    slow_mode_s: int = 0
    blocked_words: tuple[str, ...] = ()
    banned: set[int] = field(default_factory=set)
    timeouts_until_ms: dict[int, int] = field(default_factory=dict)
    moderators: set[int] = field(default_factory=set)
    _blocked_re: re.Pattern[str] | None = None

    def __post_init__(self) -> None:
        self._compile()

    def is_moderator(self, user_id: int, roles: list[str]) -> bool:
        return user_id == self.creator_id or user_id in self.moderators or bool(MODERATOR_ROLES & set(roles))

    def chat_refusal(self, user_id: int, text: str, now_ms: int) -> tuple[str, str] | None:
        """(code, detail) when this user may not say this now; None when the chat may go out."""
        if user_id in self.banned:
            return "banned", "you are banned from this room"
        until_ms = self.timeouts_until_ms.get(user_id, 0)
        if until_ms > now_ms:
            return "timed-out", f"you are timed out for {(until_ms - now_ms + 999) // 1000} more seconds"
        if self._blocked_re and self._blocked_re.search(text):
            return "blocked-word", "your message contains a word blocked in this room"
        return None

    def apply(self, event: dict[str, Any]) -> None:
        """Bring the cached rules up to date with a moderation event (blocked words are reloaded instead)."""
        action = event.get("action")
        if action == "ban":
            self.banned.add(event["user_id"])
        elif action == "unban":
            self.banned.discard(event["user_id"])
            self.timeouts_until_ms.pop(event["user_id"], None)
        elif action == "timeout":
            self.timeouts_until_ms[event["user_id"]] = event["until_ms"]
        elif action == "slow_mode":
            self.slow_mode_s = event["seconds"]
        elif action == "moderator":
            self.moderators.add(event["user_id"])

    def set_blocked_words(self, words: list[str]) -> None:
        self.blocked_words = tuple(words)
        self._compile()

    def _compile(self) -> None:
        words = [re.escape(w) for w in self.blocked_words if w]
        self._blocked_re = re.compile(r"\b(?:" + "|".join(words) + r")\b", re.IGNORECASE) if words else None


async def load_rules(pool: asyncpg.Pool, room_id: int, creator_id: int) -> RoomRules:
    async with pool.acquire() as conn:
        settings = await conn.fetchrow(
            "SELECT slow_mode_s, blocked_words FROM room_moderation WHERE room_id = $1", room_id
        )
        sanctions = await conn.fetch(
            "SELECT user_id, kind, until_ms FROM room_sanctions WHERE room_id = $1", room_id
        )
        moderators = await conn.fetch("SELECT user_id FROM room_moderators WHERE room_id = $1", room_id)
    return RoomRules(
        room_id=room_id,
        creator_id=creator_id,
        slow_mode_s=settings["slow_mode_s"] if settings else 0,
        blocked_words=tuple(settings["blocked_words"]) if settings else (),
        banned={r["user_id"] for r in sanctions if r["kind"] == "ban"},
        timeouts_until_ms={r["user_id"]: r["until_ms"] for r in sanctions if r["kind"] == "timeout"},
        moderators={r["user_id"] for r in moderators},
    )


async def record_sanction(
    pool: asyncpg.Pool, room_id: int, user_id: int, kind: str, until_ms: int | None, by_user_id: int
) -> None:
    await pool.execute(
        "INSERT INTO room_sanctions (room_id, user_id, kind, until_ms, by_user_id) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (room_id, user_id, kind) DO UPDATE SET until_ms = $4, by_user_id = $5, created_at = now()",
        room_id, user_id, kind, until_ms, by_user_id,
    )


async def lift_sanctions(pool: asyncpg.Pool, room_id: int, user_id: int) -> None:
    await pool.execute("DELETE FROM room_sanctions WHERE room_id = $1 AND user_id = $2", room_id, user_id)


async def record_settings(
    pool: asyncpg.Pool, room_id: int, *, slow_mode_s: int | None = None, blocked_words: list[str] | None = None
) -> None:
    await pool.execute(
        "INSERT INTO room_moderation (room_id, slow_mode_s, blocked_words) VALUES ($1, coalesce($2, 0),"
        " coalesce($3, '{}'::text[])) ON CONFLICT (room_id) DO UPDATE SET"
        " slow_mode_s = coalesce($2, room_moderation.slow_mode_s),"
        " blocked_words = coalesce($3, room_moderation.blocked_words)",
        room_id, slow_mode_s, blocked_words,
    )


async def room_moderators(pool: asyncpg.Pool, room_id: int) -> frozenset[int]:
    rows = await pool.fetch("SELECT user_id FROM room_moderators WHERE room_id = $1", room_id)
    return frozenset(r["user_id"] for r in rows)


async def add_moderator(pool: asyncpg.Pool, room_id: int, user_id: int) -> None:
    await pool.execute(
        "INSERT INTO room_moderators (room_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", room_id, user_id
    )
