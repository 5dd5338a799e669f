"""Presence across nodes: the node registry, viewer counts per room and connections per user.

Each node owns a hash `room -> viewers` (`lc:node:{n<node>}:rooms`) and a score in the registry sorted set
(`lc:nodes`: node -> expires_at_ms), refreshed every `presence_refresh_ms`. A room's total adds up the hashes of live
nodes only, each read on its own (they live in different slots of a cluster). A user's connections are one hash per
user (`lc:{u<user>}:conns`: node -> connections), so the check against the limit and the increment are one script
on one slot; the nodes it counts are the live nodes, read just before.

A node is live while its registration has not expired and its control channel (sharded pub/sub, subscribed by its
bus from start to stop) has a subscriber: a node that is killed or crashes stops counting the moment Redis sees that
connection close, so viewers who reconnect to another node are not counted twice while its registration expires.
A node cut off without its connection closing stops counting `presence_ttl_ms` after its last report.
"""

from __future__ import annotations

from collections import Counter

import redis.asyncio as redis

from livecore import redisclient

REGISTRY = "lc:nodes"

# Count one more connection of a user on node ARGV[1] unless the live nodes (ARGV[4..]) already hold ARGV[2] of them.
# Fields of nodes the registry no longer lists at all (ARGV[3] says how many of ARGV[4..] are live; the rest are
# listed but not live) are dropped: their process is long gone.
_ACQUIRE_CONNECTION = """
local live, listed = {}, {}
for i = 4, #ARGV do
  listed[ARGV[i]] = true
  if i < 4 + tonumber(ARGV[3]) then live[ARGV[i]] = true end
end
local fields = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #fields, 2 do
  if live[fields[i]] then
    total = total + tonumber(fields[i + 1])
  elseif not listed[fields[i]] and fields[i] ~= ARGV[1] then
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
if total >= tonumber(ARGV[2]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
return 1
"""

_RELEASE_CONNECTION = """
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
return 1
"""


def node_tag(node_id: str) -> str:
    return f"{{n{node_id}}}"


def control_channel(node_id: str) -> str:
    """The node's own sharded pub/sub channel: subscribed while the node runs, it is how other nodes tell it is
    alive."""
    return f"lc:node:{node_tag(node_id)}:control"


def user_connections_key(user_id: int) -> str:
    return f"lc:{{u{user_id}}}:conns"


class Presence:
    """This node's share of the presence data, and the totals across live nodes."""

    def __init__(self, client: redis.Redis, node_id: str, ttl_ms: int) -> None:
        self._redis = client
        self.node_id = node_id
        self._ttl_ms = ttl_ms
        self._acquire = client.register_script(_ACQUIRE_CONNECTION)
        self._release = client.register_script(_RELEASE_CONNECTION)
        self._rooms_key = f"lc:node:{node_tag(node_id)}:rooms"
        # The users this node has counted connections for: a restarted node with the same id takes them back.
        self._users_key = f"lc:node:{node_tag(node_id)}:users"

    async def reset(self) -> None:
        """Forget what a previous process with this node id left behind."""
        users = await self._redis.smembers(self._users_key)
        if users:
            async with self._redis.pipeline(transaction=False) as pipe:
                for user in users:
                    pipe.hdel(user_connections_key(int(user)), self.node_id)
                await pipe.execute()
        async with self._redis.pipeline(transaction=True) as pipe:  # one slot: the node's tag
            await pipe.delete(self._rooms_key).delete(self._users_key).execute()

    async def report(self, now_ms: int, viewers_by_room: Counter[int]) -> None:
        """Publish this node's viewer counts and extend its registration."""
        async with self._redis.pipeline(transaction=True) as pipe:  # one slot: the node's tag
            pipe.delete(self._rooms_key)
            watched = {str(room): n for room, n in viewers_by_room.items() if n > 0}
            if watched:  # a Counter keeps rooms whose last viewer left, at zero
                pipe.hset(self._rooms_key, mapping=watched)
            # Garbage collection for a node that never comes back; liveness itself is the registry score.
            pipe.pexpire(self._rooms_key, self._ttl_ms * 20).pexpire(self._users_key, self._ttl_ms * 20)
            await pipe.execute()
        async with self._redis.pipeline(transaction=True) as pipe:  # one key
            pipe.zadd(REGISTRY, {self.node_id: now_ms + self._ttl_ms})
            pipe.zremrangebyscore(REGISTRY, "-inf", now_ms - self._ttl_ms * 20)
            await pipe.execute()

    async def leave(self) -> None:
        """A clean shutdown: stop counting at once instead of after the TTL."""
        await self._redis.zrem(REGISTRY, self.node_id)
        await self.reset()

    async def live_nodes(self, now_ms: int) -> list[str]:
        """The nodes registered until at least `now_ms` whose control channel has a subscriber."""
        return (await self._nodes(now_ms))[0]

    async def _nodes(self, now_ms: int) -> tuple[list[str], list[str]]:
        """(live nodes, the other nodes the registry still lists)."""
        listed = [(n.decode(), score) for n, score in await self._redis.zrange(REGISTRY, 0, -1, withscores=True)]
        registered = [n for n, expires_ms in listed if expires_ms >= now_ms]
        listening = await redisclient.shard_numsub(self._redis, [control_channel(n) for n in registered])
        live = [n for n in registered if listening.get(control_channel(n), 0) > 0]
        return live, [n for n, _ in listed if n not in live]

    async def viewer_counts(self, now_ms: int, room_ids: list[int]) -> dict[int, int]:
        if not room_ids:
            return {}
        totals = dict.fromkeys(room_ids, 0)
        nodes = await self.live_nodes(now_ms)
        if not nodes:
            return totals
        async with self._redis.pipeline(transaction=False) as pipe:
            for node in nodes:
                pipe.hmget(f"lc:node:{node_tag(node)}:rooms", [str(room) for room in room_ids])
            per_node = await pipe.execute()
        for counts in per_node:
            for room, count in zip(room_ids, counts, strict=True):
                totals[room] += int(count or 0)
        return totals

    async def acquire_connection(self, now_ms: int, user_id: int, limit: int) -> bool:
        """Count one more connection for `user_id` unless they already hold `limit` across live nodes."""
        live, others = await self._nodes(now_ms)
        if not await self._acquire(keys=[user_connections_key(user_id)],
                                   args=[self.node_id, limit, len(live), *live, *others]):
            return False
        await self._redis.sadd(self._users_key, user_id)
        return True

    async def release_connection(self, user_id: int) -> None:
        if not await self._release(keys=[user_connections_key(user_id)], args=[self.node_id]):
            await self._redis.srem(self._users_key, user_id)
