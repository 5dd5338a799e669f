"""Sharded pub/sub subscriptions (SSUBSCRIBE), one connection per server that owns subscribed channels.

On one server that is one connection. On a Redis/Valkey Cluster a sharded channel lives on the shard that owns its
slot, and SPUBLISH reaches only that shard's subscribers, so a node holds one connection per shard it has rooms on.
redis-py's own cluster pub/sub polls its per-shard connections in turn, each with the caller's timeout (a message on
the second shard waits out the first one's), and moves channels only when some other command meets a MOVED; here
each shard's connection has its own reader, and a reader whose connection is lost reads the slot map again and moves
its channels to the slots' owners (a replica promoted in its primary's place).

Every message goes to `on_message(channel, data)`; every confirmed SSUBSCRIBE (the first and each one after a
reconnection or a move) to `on_confirmed(channel)`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as redis
import redis.exceptions as redis_errors
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster

from livecore import redisclient
from livecore.tasks import stop_tasks

log = logging.getLogger("livecore.bus")

# What a lost or reconfiguring server raises (the cluster client's slot-map errors are not RedisErrors).
LOST = (redis_errors.RedisError, redis_errors.RedisClusterException, OSError)
RECONNECT_S = 0.2  # between attempts to get a lost shard connection back while its server is unreachable
READ_WAIT_S = 1.0  # how long one read waits for a message before it looks again
SINGLE = "server"  # the one shard of a single server


class Shard:
    """One pub/sub connection to one server, and the channels subscribed on it."""

    def __init__(self, name: str, client: redis.Redis) -> None:
        self.name = name
        self.client = client
        self.pubsub: PubSub = client.pubsub(ignore_subscribe_messages=False)
        self.reader: asyncio.Task[None] | None = None
        self.up = True

    @property
    def channels(self) -> list[str]:
        return [c.decode() if isinstance(c, bytes) else c for c in self.pubsub.shard_channels]

    async def close(self) -> None:
        await stop_tasks(self.reader)
        await self.pubsub.aclose()
        if self.name != SINGLE:
            await self.client.aclose()


class ShardedSubscriber:
    def __init__(self, client: redis.Redis | RedisCluster, on_message: Callable[[str, bytes], None],
                 on_confirmed: Callable[[str], None]) -> None:
        self._client = client
        self._on_message = on_message
        self._on_confirmed = on_confirmed
        self._shards: dict[str, Shard] = {}
        self._owner: dict[str, str] = {}  # channel -> the shard it is subscribed on

    @property
    def available(self) -> bool:
        """Every shard connection is up (or none is needed yet)."""
        return all(shard.up for shard in self._shards.values())

    def available_for(self, channel: str) -> bool:
        """The connection that carries `channel` is up (True for a channel not subscribed here)."""
        shard = self._shards.get(self._owner.get(channel, ""))
        return shard is None or shard.up

    async def subscribe(self, channel: str) -> None:
        """Send SSUBSCRIBE on the channel's shard; the confirmation comes to `on_confirmed`."""
        if redisclient.is_cluster(self._client):
            await self._client.initialize()  # the slot map (a no-op once read)
        shard = self._shard_for(channel)
        self._owner[channel] = shard.name
        try:
            await shard.pubsub.ssubscribe(channel)
        except BaseException:
            self._owner.pop(channel, None)
            raise

    async def unsubscribe(self, channel: str) -> None:
        shard = self._shards.get(self._owner.pop(channel, ""))
        if shard is None:
            return
        if not shard.up:
            _forget(shard.pubsub, channel)  # not subscribed again when the connection comes back
            return
        await shard.pubsub.sunsubscribe(channel)

    async def stop(self) -> None:
        for shard in list(self._shards.values()):
            await shard.close()
        self._shards.clear()
        self._owner.clear()

    def _shard_for(self, channel: str) -> Shard:
        if not redisclient.is_cluster(self._client):
            name = SINGLE
        else:
            name = self._client.get_node_from_key(channel).name
        shard = self._shards.get(name)
        if shard is None:
            shard = self._shards[name] = Shard(name, self._client if name == SINGLE else self._node_client(name))
            shard.reader = asyncio.create_task(self._read_forever(shard), name=f"bus-reader-{name}")
        return shard

    def _node_client(self, name: str) -> redis.Redis:
        """A client of one node of the cluster, with the cluster client's credentials and timeouts."""
        node = self._client.get_node(node_name=name)
        pool = redis.ConnectionPool(connection_class=node.connection_class, max_connections=2,
                                    **{k: v for k, v in node.connection_kwargs.items() if k != "event_dispatcher"})
        return redis.Redis.from_pool(pool)

    async def _read_forever(self, shard: Shard) -> None:
        while True:
            if not shard.pubsub.subscribed:
                await asyncio.sleep(READ_WAIT_S / 10)  # nothing to read until the first SSUBSCRIBE is sent
                continue
            try:
                message = await shard.pubsub.get_message(timeout=READ_WAIT_S)
            except LOST as exc:
                if shard.up:
                    log.warning("bus connection to %s lost, retrying every %.1f s: %s", shard.name, RECONNECT_S, exc)
                shard.up = False
                await asyncio.sleep(RECONNECT_S)
                if redisclient.is_cluster(self._client) and await self._move_channels(shard):
                    return
                continue
            if message is not None:
                self._dispatch(shard, message)

    def _dispatch(self, shard: Shard, message: dict[str, Any]) -> None:
        kind = message["type"]
        channel = message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
        if kind == "ssubscribe":
            if not shard.up:
                log.info("bus connection to %s back", shard.name)
                shard.up = True
            self._on_confirmed(channel)
        elif kind == "smessage":
            self._on_message(channel, message["data"])

    async def _move_channels(self, shard: Shard) -> bool:
        """After `shard`'s connection was lost: read the slot map again and subscribe each of its channels on the
        shard that owns the channel's slot now; True when none is left on `shard` (it is closed then)."""
        try:
            await self._client.nodes_manager.initialize()
        except LOST as exc:
            log.debug("cluster slot map not readable yet: %s", exc)
            return False
        moving = [c for c in shard.channels if self._client.get_node_from_key(c).name != shard.name]
        if not moving:
            return False
        log.warning("%d bus channels move from %s to the shards that own their slots now", len(moving), shard.name)
        for channel in moving:
            try:
                await self.subscribe(channel)
            except LOST as exc:
                self._owner[channel] = shard.name  # still here: the next attempt moves it
                log.warning("could not subscribe %s on its new shard yet: %s", channel, exc)
                continue
            _forget(shard.pubsub, channel)
        if shard.channels:
            return False
        del self._shards[shard.name]
        await shard.pubsub.aclose()
        await shard.client.aclose()
        return True


def _forget(pubsub: PubSub, channel: str) -> None:
    pubsub.shard_channels.pop(channel.encode(), None)
    pubsub.shard_channels.pop(channel, None)
