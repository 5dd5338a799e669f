"""The account record and what can be done to it, as plain async functions over a pool."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import asyncpg

from livecore.accounts.tokens import hash_password, password_matches
from livecore.clock import Clock
from livecore.http import Problem

ADULT_AGE_YEARS = 18
_COLUMNS = "id, username, password_hash, display_name, birth_date, region, language, interests, roles"


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    display_name: str
    birth_date: dt.date
    region: str
    language: str
    interests: list[str]
    roles: list[str]

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "display_name": self.display_name}

    def profile(self, today: dt.date) -> dict[str, Any]:
        return {
            **self.public(),
            "birth_date": self.birth_date.isoformat(),
            "region": self.region,
            "language": self.language,
            "interests": self.interests,
            "roles": self.roles,
            "adult": is_adult(self, today),
        }


def is_adult(account: Account, today: dt.date) -> bool:
    born = account.birth_date
    years = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return years >= ADULT_AGE_YEARS


def _from_row(row: asyncpg.Record) -> Account:
    return Account(
        id=row["id"], username=row["username"], display_name=row["display_name"], birth_date=row["birth_date"],
        region=row["region"], language=row["language"], interests=list(row["interests"]), roles=list(row["roles"]),
    )


async def create_account(
    pool: asyncpg.Pool,
    *,
    username: str,
    password: str,
    birth_date: dt.date,
    region: str,
    language: str = "en",
    display_name: str = "",
    interests: list[str] | None = None,
    roles: list[str] | None = None,
) -> Account:
    """A new account; 409 if the username is taken."""
    password_hash = await hash_password(password)
    try:
        row = await pool.fetchrow(
            f"INSERT INTO accounts (username, password_hash, display_name, birth_date, region, language,"
            f" interests, roles) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_COLUMNS}",
            username, password_hash, display_name or username, birth_date, region.upper(), language,
            interests or [], roles or ["viewer", "creator"],
        )
    except asyncpg.UniqueViolationError as exc:
        raise Problem(409, "username-taken", f"the username {username!r} is already taken") from exc
    return _from_row(row)


async def authenticate(pool: asyncpg.Pool, username: str, password: str) -> Account:
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM accounts WHERE username = $1", username.lower())
    if row is None or not await password_matches(row["password_hash"], password):
        raise Problem(401, "bad-credentials", "the username or password is wrong")
    return _from_row(row)


async def get_account(pool: asyncpg.Pool, user_id: int) -> Account | None:
    row = await pool.fetchrow(f"SELECT {_COLUMNS} FROM accounts WHERE id = $1", user_id)
    return _from_row(row) if row else None


class AccountCache:
    """Accounts as recently read, for the paths that authenticate every request (a gift, a room join).

    An account changes only through `livecore grant` (its roles), which therefore reaches every node within
    `ttl_ms`. An account that is not found is never remembered, so a new sign-up is seen at once.
    """

    def __init__(self, pool: asyncpg.Pool, clock: Clock, ttl_ms: int, entries_max: int) -> None:
        self._pool = pool
        self._clock = clock
        self._ttl_ms = ttl_ms
        self._entries_max = entries_max
        self._entries: dict[int, tuple[int, Account]] = {}  # user id -> (expires at ms, account), oldest first

    async def get(self, user_id: int) -> Account | None:
        now_ms = self._clock.now_ms()
        found = self._entries.get(user_id)
        if found is not None and found[0] > now_ms:
            return found[1]
        account = await get_account(self._pool, user_id)
        self._entries.pop(user_id, None)
        if account is not None and self._ttl_ms > 0:
            if len(self._entries) >= self._entries_max:
                del self._entries[next(iter(self._entries))]
            self._entries[user_id] = (now_ms + self._ttl_ms, account)
        return account


async def follow(pool: asyncpg.Pool, follower_id: int, followee_id: int) -> None:
    if follower_id == followee_id:
        raise Problem(403, "self-follow", "you cannot follow yourself")
    try:
        await pool.execute(
            "INSERT INTO follows (follower_id, followee_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            follower_id, followee_id,
        )
    except asyncpg.ForeignKeyViolationError as exc:
        raise Problem(404, "user-not-found", f"there is no user {followee_id}") from exc


async def unfollow(pool: asyncpg.Pool, follower_id: int, followee_id: int) -> None:
    await pool.execute("DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2", follower_id, followee_id)


async def follow_counts(pool: asyncpg.Pool, user_id: int) -> dict[str, int]:
    row = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM follows WHERE followee_id = $1) AS followers,"
        " (SELECT count(*) FROM follows WHERE follower_id = $1) AS following",
        user_id,
    )
    return {"followers": row["followers"], "following": row["following"]}
