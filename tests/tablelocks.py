"""Forcing a race with a PostgreSQL table lock: hold the lock in one session, start what reads the table, and go on
once that read is waiting for the lock."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

QUERY_WAIT_S_MAX = 10.0


async def until_a_query_waits_for(connection: asyncpg.Connection, table: str) -> None:
    """Return once another session waits for a lock on `table` (at most QUERY_WAIT_S_MAX)."""
    for _ in range(int(QUERY_WAIT_S_MAX / 0.05)):
        if await connection.fetchval("SELECT count(*) FROM pg_locks WHERE relation = $1::regclass AND NOT granted",
                                     table):
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"no query waited for the lock on {table}")
