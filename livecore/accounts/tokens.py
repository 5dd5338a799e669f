"""Session tokens (signed, expiring JWTs) and password hashing (Argon2id, memory-hard)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets

import argon2
import asyncpg
import jwt

from livecore.clock import Clock

_hasher = argon2.PasswordHasher()  # Argon2id with the library's current recommended cost


class TokenError(Exception):
    """A token that is missing, forged, malformed or expired; the message says which."""


VERIFIED_REMEMBERED_MAX = 100_000  # tokens whose signature was checked, kept so a busy client's next request skips it


class Tokens:
    """Issues and verifies HS256 session tokens with a secret every node shares."""

    def __init__(self, secret: str, ttl_s: int, clock: Clock) -> None:
        self._secret = secret
        self._ttl_s = ttl_s
        self._clock = clock
        self._verified: dict[str, tuple[int, int]] = {}  # token -> (user id, expiry s), oldest first

    def issue(self, user_id: int) -> str:
        now_s = self._clock.now_ms() // 1000
        claims = {"sub": str(user_id), "iat": now_s, "exp": now_s + self._ttl_s}
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> int:
        """The user id in a valid token; TokenError otherwise. Expiry is judged by our clock, not the OS's.

        A token is a fixed string signed with the shared secret, so once its signature checks out only its expiry
        can change the answer: verified tokens are remembered and the next request pays for the clock alone."""
        known = self._verified.get(token)
        if known is None:
            try:
                claims = jwt.decode(
                    token, self._secret, algorithms=["HS256"],
                    options={"verify_exp": False, "verify_iat": False, "require": ["exp", "sub"]},
                )
            except jwt.InvalidTokenError as exc:
                raise TokenError(f"invalid token: {exc}") from exc
            known = (int(claims["sub"]), int(claims["exp"]))
            if len(self._verified) >= VERIFIED_REMEMBERED_MAX:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = known
        user_id, expires_s = known
        if expires_s <= self._clock.now_ms() // 1000:
            raise TokenError("the token has expired; log in again")
        return user_id

    def node_proof(self, node_id: str) -> str:
        """What node `node_id` sends with its requests to other nodes to show it is one of them: an HMAC of its id
        under the shared secret (over a message no JWT has, so it can never pass as a session token)."""
        message = b"livecore node\x00" + node_id.encode()
        return hmac.new(self._secret.encode(), message, hashlib.sha256).hexdigest()


async def shared_secret(pool: asyncpg.Pool) -> str:
    """The token secret stored in PostgreSQL, created once, so all nodes on one database agree."""
    candidate = secrets.token_urlsafe(48)
    await pool.execute(
        "INSERT INTO node_settings (name, value) VALUES ('token_secret', $1) ON CONFLICT DO NOTHING", candidate
    )
    return await pool.fetchval("SELECT value FROM node_settings WHERE name = 'token_secret'")


async def hash_password(password: str) -> str:
    # Argon2 takes tens of milliseconds of CPU on purpose; keep it off the event loop.
    return await asyncio.get_running_loop().run_in_executor(None, _hasher.hash, password)


async def password_matches(stored_hash: str, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(stored_hash, password)
        except argon2.exceptions.VerificationError:
            return False
        except argon2.exceptions.InvalidHashError:
            return False

    return await asyncio.get_running_loop().run_in_executor(None, check)
