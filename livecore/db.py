"""PostgreSQL: the pool and the ordered migrations each bounded context ships in its `migrations/` folder."""

from __future__ import annotations

import importlib.resources
import logging

import asyncpg

log = logging.getLogger("livecore.db")

# Contexts in dependency order; each owns `<package>/migrations/NNNN_name.sql`.
MIGRATION_PACKAGES = ("livecore", "signaling", "commerce", "feeds", "ads", "editor")

# One lock id for all nodes, so two nodes starting together do not both migrate.
_MIGRATION_LOCK = 0x6C697665


def migration_files() -> list[tuple[str, str]]:
    """(name, sql) for every migration, in the order they must run."""
    found: list[tuple[str, str]] = []
    for package in MIGRATION_PACKAGES:
        folder = importlib.resources.files(package) / "migrations"
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".sql"):
                found.append((f"{package}/{entry.name}", entry.read_text()))
    return found


async def migrate(pool: asyncpg.Pool) -> list[str]:
    """Apply the migrations not yet recorded; returns the names applied now."""
    applied_now: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
            for name, sql in migration_files():
                if name in done:
                    continue
                async with conn.transaction():
                    await conn.execute(sql)
                    await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
                log.info("applied migration %s", name)
                applied_now.append(name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied_now


async def create_pool(url: str, size_max: int) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(url, min_size=1, max_size=size_max, command_timeout=30, reset=_keep_session)
    assert pool is not None
    return pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Hand a released connection back as it is. asyncpg still rolls back an open transaction; its default reset
    (RESET ALL, UNLISTEN *, CLOSE ALL, unlock advisory locks) is one more round trip per acquire, about a sixth of
    a busy node's CPU, for session state this code never leaves behind: no SET, no LISTEN, no cursor outside a
    transaction, and every session advisory lock is unlocked in a `finally`."""
