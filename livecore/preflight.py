"""What a node checks before it serves, and `livecore check` checks too: the data dir, the listening address,
PostgreSQL and Redis. Each check returns a short description of what it found or raises StartupError.

PostgreSQL and Redis are retried for `startup_wait_s` while they are unreachable or still starting (in a cluster
the database may come up after the node); an answer that will not change by waiting (a refused password, a
missing database, a Redis without a command the node uses) fails at once.
"""

from __future__ import annotations

import errno
import logging
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

import asyncpg
import redis.asyncio as redis
import redis.exceptions as redis_errors
import yarl
from redis.asyncio.cluster import RedisCluster
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_before_delay, wait_exponential

from livecore import redisclient
from livecore.startup import ExitCode, StartupError

log = logging.getLogger("livecore.preflight")

CONNECT_S_MAX = 5.0  # one connection attempt; the whole wait is `startup_wait_s`
REDIS_VERSION_MIN = (7, 0)
# Every Redis command the node sends, in Lua scripts or directly (tests/test_preflight.py keeps this list honest).
REDIS_COMMANDS = (
    "CLUSTER", "DEL", "EVALSHA", "EXEC", "GET", "HDEL", "HGET", "HGETALL", "HINCRBY", "HMGET", "HSET", "INCR", "MGET",
    "MULTI", "PEXPIRE", "PING", "PUBLISH", "PUBSUB", "SADD", "SCRIPT", "SET", "SMEMBERS", "SPUBLISH", "SREM",
    "SSUBSCRIBE", "SUBSCRIBE", "SUNSUBSCRIBE", "TIME", "UNSUBSCRIBE", "XADD", "XRANGE", "XREVRANGE", "ZADD", "ZRANGE",
    "ZRANGEBYSCORE", "ZREM", "ZREMRANGEBYRANK", "ZREMRANGEBYSCORE", "ZSCORE",
)


def check_data_dir(data_dir: Path) -> str:
    """The data dir exists (created if need be) and a file can be written in it."""
    try:
        if data_dir.exists() and not data_dir.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "it is a file, not a directory")
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise StartupError(
            ExitCode.DATA_DIR, f"cannot be written ({exc.strerror or exc})",
            "point it at a directory this user can write (embedded servers, recordings and HLS live there)",
            setting="data_dir", value=data_dir,
        ) from None
    return f"{data_dir.resolve()} is writable"


def bind_listeners(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address `host` names, bound now so a taken port is known before anything
    else starts; the caller serves on them or closes them."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(ExitCode.BIND, f"cannot be listened on ({exc.strerror})",
                           "set an address of this machine (127.0.0.1, 0.0.0.0, ::) or a name that resolves to one",
                           setting="host", value=host) from None
    listeners: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys((i[0], i[1], i[2], "", i[4]) for i in infos):
            sock = socket.socket(family, kind, proto)
            listeners.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(128)
    except OSError as exc:
        for sock in listeners:
            sock.close()
        raise bind_error(exc, host, port) from None
    return listeners


def bind_error(exc: OSError, host: str, port: int) -> StartupError:
    if exc.errno == errno.EADDRINUSE:
        return StartupError(ExitCode.BIND, f"already in use on {host} (another program listens there)",
                            f"stop that program (`ss -ltnp 'sport = :{port}'` names it) or choose another port",
                            setting="port", value=port)
    if exc.errno == errno.EACCES:
        return StartupError(ExitCode.BIND, "needs privileges this user lacks (ports below 1024)",
                            "choose a port from 1024 up, or put a proxy in front", setting="port", value=port)
    return StartupError(ExitCode.BIND, f"cannot be listened on ({exc.strerror or exc})",
                        "set an address of this machine (127.0.0.1, 0.0.0.0, ::)", setting="host", value=host)


def _retrying(wait_s: int, transient: Callable[[BaseException], bool], what: str) -> AsyncRetrying:
    def say_retrying(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        level = logging.WARNING if state.attempt_number == 1 else logging.DEBUG
        log.log(level, "%s is not answering yet (%s); retrying for up to %d s", what, _reason(error), wait_s)

    return AsyncRetrying(stop=stop_before_delay(wait_s), wait=wait_exponential(multiplier=0.2, max=2),
                         retry=retry_if_exception(transient), before_sleep=say_retrying, reraise=True)


def _reason(exc: BaseException | None) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def _connect_timeout_s(wait_s: int) -> float:
    return min(CONNECT_S_MAX, max(1.0, float(wait_s)))


async def connect_database(url: str, wait_s: int) -> asyncpg.Connection:
    """One connection to PostgreSQL, retried while it is unreachable or starting up (the caller closes it)."""
    try:
        async for attempt in _retrying(wait_s, _pg_transient, "PostgreSQL"):
            with attempt:
                return await asyncpg.connect(url, timeout=_connect_timeout_s(wait_s))
    except Exception as exc:
        raise _database_error(exc, url, wait_s) from None
    raise AssertionError("unreachable: tenacity either returns or raises")


async def check_database(url: str, wait_s: int) -> str:
    """PostgreSQL answers at `url` and accepts its credentials; its version."""
    conn = await connect_database(url, wait_s)
    try:
        return f"PostgreSQL {await conn.fetchval('SHOW server_version')}"
    finally:
        await conn.close()


def _pg_transient(exc: BaseException) -> bool:
    return isinstance(exc, OSError | TimeoutError | asyncpg.CannotConnectNowError | asyncpg.TooManyConnectionsError)


def _database_error(exc: BaseException, url: str, wait_s: int) -> StartupError:
    where = _where(url, 5432)
    waited = f" after {wait_s} s of retries" if wait_s else ""
    if isinstance(exc, asyncpg.InvalidPasswordError):
        problem, remedy = f"PostgreSQL refused the credentials ({exc})", "fix the user or password in the URL"
    elif isinstance(exc, asyncpg.InvalidCatalogNameError):
        problem, remedy = f"PostgreSQL answers but {exc}", "create the database or fix its name in the URL"
    elif isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        problem, remedy = f"PostgreSQL refused the connection ({exc})", "create the role or fix the URL"
    elif _caused_by(exc, ConnectionRefusedError):
        problem = f"nothing answers at {where} (connection refused){waited}"
        remedy = "start PostgreSQL, or fix the host and port in the URL"
    elif isinstance(exc, socket.gaierror):
        problem, remedy = f"the host in the URL is not known ({exc.strerror}){waited}", "fix the host in the URL"
    elif isinstance(exc, TimeoutError):
        problem, remedy = f"no answer from {where}{waited}", "check that PostgreSQL runs there and a firewall lets it"
    else:
        problem = f"cannot connect to PostgreSQL at {where}: {_reason(exc)}{waited}"
        remedy = "check the URL and that PostgreSQL runs there"
    return StartupError(ExitCode.DATABASE, problem, remedy, setting="database_url", value=url)


async def connect_redis(url: str, wait_s: int) -> redis.Redis:
    """A Redis client that has answered PING, retried while Redis is unreachable or loading (the caller closes it)."""
    timeout_s = _connect_timeout_s(wait_s)
    if redisclient.names_cluster(url):
        return await _connect_cluster(url, wait_s, timeout_s)
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    except ValueError as exc:
        raise _unusable_url(url, exc) from None
    try:
        async for attempt in _retrying(wait_s, _redis_transient, "Redis"):
            with attempt:
                await client.ping()
    except Exception as exc:
        await client.aclose()
        raise _redis_error(exc, url, wait_s) from None
    return client


async def _connect_cluster(url: str, wait_s: int, timeout_s: float) -> RedisCluster:
    # The cluster client reads the slot map when it is made: made again on each attempt, while the cluster starts.
    async def connect() -> RedisCluster:
        client = redisclient.connect(url, 4, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
        try:
            await client.initialize()
            await client.ping(target_nodes=RedisCluster.ALL_NODES)
        except BaseException:
            await client.aclose()
            raise
        return client

    try:
        async for attempt in _retrying(wait_s, _cluster_transient, "Redis Cluster"):
            with attempt:
                return await connect()
    except ValueError as exc:
        raise _unusable_url(url, exc) from None
    except Exception as exc:
        raise _redis_error(exc, url, wait_s) from None
    raise AssertionError("unreachable: tenacity either returns or raises")


def _unusable_url(url: str, exc: ValueError) -> StartupError:
    return StartupError(ExitCode.SETTING, f"is not a usable Redis URL ({exc})", "fix the URL",
                        setting="redis_url", value=url)


async def check_redis(url: str, wait_s: int) -> str:
    """Redis answers at `url`, accepts its credentials, and has what the node needs; which server it is."""
    client = await connect_redis(url, wait_s)
    try:
        return await redis_features(client, url)
    finally:
        await client.aclose()


async def redis_features(client: redis.Redis, url: str) -> str:
    """Refuse a Redis the node cannot use: older than 7, a cluster node, or without a command the node sends;
    which server it is (Valkey 8.1.8, Redis 7.2.4)."""
    node = _one_node(client, url)
    try:
        server = await node.info("server")
        cluster = await node.info("cluster")
        missing = await _missing_commands(node)
    except redis_errors.RedisError as exc:
        raise _redis_error(exc, url, 0) from None
    finally:
        if node is not client:
            await node.aclose()
    version = str(server.get("redis_version", "0"))
    name = f"Valkey {server['valkey_version']}" if "valkey_version" in server else f"Redis {version}"
    if _version_tuple(version) < REDIS_VERSION_MIN:
        raise _redis_refusal(url, f"{name} is too old: the node needs Redis 7 or later (or Valkey)",
                             "upgrade it or point at a newer server")
    if cluster.get("cluster_enabled") and not redisclient.names_cluster(url):
        raise _redis_refusal(url, f"{name} runs in cluster mode and the URL names a single server",
                             f"name the cluster: {redisclient.cluster_url(url)}")
    if redisclient.names_cluster(url) and not cluster.get("cluster_enabled"):
        raise _redis_refusal(url, f"{name} is a single server, not a cluster node",
                             f"use {redisclient.node_url(url)}, or point at a node of a cluster")
    if missing:
        raise _redis_refusal(url, f"{name} lacks commands the node uses: {', '.join(missing)} (renamed or disabled)",
                             "enable them (rename-command, ACL) or point at another server")
    if isinstance(client, RedisCluster):
        return f"{name} cluster of {len(client.get_primaries())} primaries"
    return name


async def _missing_commands(client: redis.Redis) -> list[str]:
    # COMMAND INFO answers nil for a command that is renamed or disabled; redis-py's own parser trips on the nil.
    client.set_response_callback("COMMAND", lambda response, **_: response)
    try:
        found = await client.execute_command("COMMAND", "INFO", *REDIS_COMMANDS)
    except redis_errors.ResponseError as exc:
        if "unknown command" in str(exc).lower():
            log.warning("Redis has COMMAND disabled; cannot tell whether it has every command the node uses")
            return []
        raise
    return [name for name, info in zip(REDIS_COMMANDS, found, strict=True) if info is None]


def _one_node(client: redis.Redis | RedisCluster, url: str) -> redis.Redis:
    """The client itself, or a client of the first primary of a cluster (INFO and COMMAND answer per node; every
    node of a cluster runs the same server)."""
    if not isinstance(client, RedisCluster):
        return client
    primary = client.get_primaries()[0]
    return redis.Redis.from_url(str(yarl.URL(redisclient.node_url(url)).with_host(primary.host)
                                   .with_port(primary.port)))


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".")[:2] if part.isdigit())


def _redis_transient(exc: BaseException) -> bool:
    if isinstance(exc, redis_errors.AuthenticationError):
        return False
    return isinstance(exc, redis_errors.ConnectionError | redis_errors.TimeoutError | redis_errors.BusyLoadingError
                      | OSError)


def _cluster_transient(exc: BaseException) -> bool:
    # A cluster still being formed answers "slots not covered" or CLUSTERDOWN, which waiting cures.
    return _redis_transient(exc) or isinstance(exc, redis_errors.RedisClusterException | redis_errors.ClusterError)


def _redis_refusal(url: str, problem: str, remedy: str) -> StartupError:
    return StartupError(ExitCode.REDIS, problem, remedy, setting="redis_url", value=url)


def _redis_error(exc: BaseException, url: str, wait_s: int) -> StartupError:
    where = _where(url, 6379)
    waited = f" after {wait_s} s of retries" if wait_s else ""
    text = str(exc)
    if isinstance(exc, redis_errors.AuthenticationError | redis_errors.AuthenticationWrongNumberOfArgsError) or \
            "NOAUTH" in text or "WRONGPASS" in text:
        if _password_of(url) is None:
            return _redis_refusal(url, "Redis asks for a password and the URL gives none",
                                  "put it in the URL (redis://:password@host:port/db or redis://user:password@...)")
        return _redis_refusal(url, f"Redis refused the credentials ({text})",
                              "fix the user or password in the URL (redis://user:password@host:port/db)")
    if isinstance(exc, redis_errors.NoPermissionError) or "NOPERM" in text:
        return _redis_refusal(url, f"the Redis user may not run what the node needs ({text})",
                              "grant the user +@all on lc:* keys, or use another user")
    if isinstance(exc, redis_errors.TimeoutError):
        return _redis_refusal(url, f"no answer from {where}{waited}",
                              "check that Redis runs there and a firewall lets it")
    if _caused_by(exc, ConnectionRefusedError) or "refused" in text.lower():
        return _redis_refusal(url, f"nothing answers at {where} (connection refused){waited}",
                              "start Redis/Valkey, or fix the host and port in the URL")
    return _redis_refusal(url, f"cannot use Redis at {where}: {text or type(exc).__name__}{waited}",
                          "check the URL and that Redis runs there")


def _caused_by(exc: BaseException | None, kind: type[BaseException]) -> bool:
    """`exc` is a `kind`, or was raised while handling one (redis-py wraps the socket's error)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, kind):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _password_of(url: str) -> str | None:
    try:
        parsed = yarl.URL(url)
    except ValueError:
        return None
    return parsed.password or parsed.query.get("password")


def _where(url: str, default_port: int) -> str:
    try:
        parsed = yarl.URL(url)
    except ValueError:
        return "the URL's address"
    if parsed.scheme == "unix":
        return parsed.path
    return f"{parsed.host}:{parsed.port or default_port}"
