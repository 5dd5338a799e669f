"""Telling an outage from a bug: which exceptions mean PostgreSQL or Redis cannot be reached right now.

One place decides it, so an HTTP request answers 503 `livecore:unavailable` (http.py) and a room command an `error`
event (`database-unavailable`, `bus-unavailable`) for the same failures, and every other exception stays a bug.
"""

from __future__ import annotations

from types import TracebackType
from typing import Literal

import asyncpg
import redis.exceptions

Part = Literal["database", "bus"]

# What asyncpg raises when the server went away or refuses connections for now (not a query's own error).
_DATABASE_GONE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.ConnectionDoesNotExistError,  # the connection closed under a query
    asyncpg.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.AdminShutdownError,  # 57P01: `pg_ctl stop` terminating the session
    asyncpg.CrashShutdownError,  # 57P02
    # A session the server ends in the middle of an operation sometimes surfaces as "cannot switch to state N;
    # another operation (M) is in progress" instead of ConnectionDoesNotExistError (asyncpg issue #1069); the pool
    # terminates such a connection on release, so it is the outage seen from one more side, not a bug of ours.
    asyncpg.InternalClientError,
)
_BUS_GONE: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,  # refused, reset, loading, or no pool connection free in time
    redis.exceptions.TimeoutError,
    # A Redis Cluster in a failover: a shard without a primary, a slot nobody serves yet, a slot being moved.
    redis.exceptions.ClusterError,  # CLUSTERDOWN, MASTERDOWN
    redis.exceptions.SlotNotCoveredError,
    redis.exceptions.TryAgainError,
)
# asyncpg's answer to any use of a connection the server (or a failed query) has already closed, a transaction's
# rollback on the way out included ("connection is closed", or "cannot call Transaction.__aexit__(): the underlying
# connection is closed" when the query under it saw the server end the session); its other InterfaceErrors are
# misuse (bugs).
_DATABASE_CONNECTION_CLOSED = "connection is closed"
# What redis-py's cluster client says when it cannot read a whole slot map (every node it knows is unreachable, or
# the map has holes while a replica is being promoted); its other RedisClusterExceptions are usage errors (bugs).
_CLUSTER_MAP_UNREADABLE = ("Redis Cluster cannot be connected", "All slots are not covered")
# A plain socket error or timeout means the part whose client raised it (asyncpg connects with bare sockets).
_SOCKET_TROUBLE: tuple[type[BaseException], ...] = (OSError, TimeoutError)


def unreachable_part(exc: BaseException) -> Part | None:
    """The part (`database` or `bus`) that `exc` says is unreachable, or None if it is not an outage."""
    if isinstance(exc, _DATABASE_GONE):
        return "database"
    if isinstance(exc, asyncpg.InterfaceError) and str(exc).endswith(_DATABASE_CONNECTION_CLOSED):
        return "database"
    if isinstance(exc, _BUS_GONE):
        return "bus"
    if isinstance(exc, redis.exceptions.RedisClusterException) and str(exc).startswith(_CLUSTER_MAP_UNREADABLE):
        return "bus"
    if isinstance(exc, _SOCKET_TROUBLE):
        return _raised_in(exc.__traceback__)
    return None


def _raised_in(tb: TracebackType | None) -> Part | None:
    """The client library among the frames that raised, innermost first."""
    found: Part | None = None
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.startswith("asyncpg"):
            found = "database"
        elif module.startswith("redis"):
            found = "bus"
        tb = tb.tb_next
    return found
