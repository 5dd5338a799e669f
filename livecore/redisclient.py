"""The node's Redis client: one server (`redis://`, `rediss://`, `unix://`) or a Redis/Valkey Cluster
(`redis+cluster://host:port`, `rediss+cluster://`, naming any one node of it; the client learns the rest from the
cluster's slot map).

Every key the node writes is slot-safe: a script or a multi-key command only ever touches keys of one hash tag (see
README "Valkey Cluster"), so the same code runs on one server and on a cluster. What differs is here: how the client
is made, and reading many keys of different slots at once (`get_many`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as redis
import yarl
from redis._parsers.commands import AsyncCommandsParser
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.exceptions import MaxConnectionsError

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
URL_SCHEMES = ("redis", "rediss", "unix", *CLUSTER_SCHEMES)

Client = redis.Redis | RedisCluster


def names_cluster(url: str) -> bool:
    """`url` names a Redis Cluster (its scheme ends in +cluster)."""
    return url.split("://", 1)[0] in CLUSTER_SCHEMES


def node_url(url: str) -> str:
    """The plain URL of the node a cluster URL names (a plain URL unchanged)."""
    scheme, rest = url.split("://", 1) if "://" in url else ("", url)
    return f"{CLUSTER_SCHEMES[scheme]}://{rest}" if scheme in CLUSTER_SCHEMES else url


def cluster_url(url: str) -> str:
    """The cluster URL of a plain redis:// or rediss:// URL."""
    scheme, rest = url.split("://", 1) if "://" in url else ("redis", url)
    return f"{scheme}+cluster://{rest}" if scheme in ("redis", "rediss") else url


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)


def connect(url: str, connections_max: int, wait_s_max: float | None = None, **options: Any) -> Client:
    """A client for `url`: a RedisCluster for a cluster URL (at most `connections_max` connections to each of its
    nodes), else a Redis on a blocking pool of `connections_max` whose commands wait up to `wait_s_max` for a free
    connection. Raises ValueError for a URL redis-py cannot use."""
    if names_cluster(url):
        _refuse_database(url)
        # Without full coverage the client goes on serving the slots that have a primary while one shard has none
        # (a cluster run with cluster-require-full-coverage no keeps serving them too).
        client = BoundedRedisCluster.from_url(node_url(url), max_connections=connections_max,
                                              require_full_coverage=False, **options)
        client.bound(connections_max, wait_s_max)
        client.commands_parser = CommandTable()
        return client
    pool = redis.BlockingConnectionPool.from_url(url, max_connections=connections_max, timeout=wait_s_max,
                                                 **options)
    return redis.Redis.from_pool(pool)  # closing the client closes its pool


class BoundedRedisCluster(RedisCluster):
    """A RedisCluster whose commands wait for a free connection, as commands on a blocking pool do on one server.

    redis-py's cluster client opens at most `max_connections` per node and refuses a command beyond that at once
    (MaxConnectionsError): a storm of joins would be answered 503. Here at most `connections_max` commands and
    pipelines are in flight at once (each holds at most one connection per node), and one more waits up to
    `wait_s_max` for its turn.
    """

    _permits: asyncio.Semaphore
    _wait_s_max: float | None

    def bound(self, connections_max: int, wait_s_max: float | None) -> None:
        self._permits = asyncio.Semaphore(connections_max)
        self._wait_s_max = wait_s_max

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self._wait_s_max):
                await self._permits.acquire()
        except TimeoutError:
            raise MaxConnectionsError(f"no Redis connection free within {self._wait_s_max} s") from None
        try:
            yield
        finally:
            self._permits.release()

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.turn():
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # which refuses it
        return BoundedClusterPipeline(self, transaction)


class CommandTable(AsyncCommandsParser):
    """The server's command table (where each command's keys are), read once.

    redis-py reads it again from the client's default node every time it re-reads the slot map, which it does after
    any node failed; when the default node is the one that died, every re-read failed, and each failure closed the
    connections to every node: one shard down stopped the client for all of them.
    """

    async def initialize(self, node: ClusterNode | None = None) -> None:
        if not self.commands:
            await super().initialize(node)


class BoundedClusterPipeline(ClusterPipeline):
    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        async with self.cluster_client.turn():
            return await super().execute(raise_on_error, allow_redirections)


def _refuse_database(url: str) -> None:
    path = yarl.URL(url).path.strip("/")
    if path not in ("", "0"):
        raise ValueError(f"a cluster has only database 0, the URL names database {path}")


async def get_many(client: Client, keys: list[str]) -> list[bytes | None]:
    """GET of each key in one round trip per server (MGET on one server; keys of several slots on a cluster)."""
    if not keys:
        return []
    if is_cluster(client):
        return await client.mget_nonatomic(keys)
    return await client.mget(keys)


async def shard_numsub(client: Client, channels: list[str]) -> dict[str, int]:
    """How many connections are subscribed to each sharded channel, asked of the shard that owns it."""
    if not channels:
        return {}
    if not is_cluster(client):
        reply = await client.execute_command("PUBSUB", "SHARDNUMSUB", *channels)
        return _numsub_counts(reply)
    counts: dict[str, int] = {}
    for channel in channels:
        node = client.get_node_from_key(channel)
        reply = await client.execute_command("PUBSUB", "SHARDNUMSUB", channel, target_nodes=node)
        counts.update(_numsub_counts(reply))
    return counts


def _numsub_counts(reply: Any) -> dict[str, int]:
    pairs = reply if isinstance(reply, list) else list(reply.items()) if isinstance(reply, dict) else []
    if pairs and not isinstance(pairs[0], tuple | list):
        pairs = list(zip(pairs[::2], pairs[1::2], strict=True))
    return {(name.decode() if isinstance(name, bytes) else str(name)): int(count) for name, count in pairs}
