"""Presence across nodes: the node registry, viewer counts per room and connections per user.

Each node owns two hashes (`room -> viewers`, `user -> connections`) and a score in the registry sorted set
(`node -> expires_at_ms`), refreshed every `presence_refresh_ms`. Totals add up the hashes of live nodes only.

A node is live while its registration has not expired and its pub/sub connection (subscribed to its control
channel from start to stop) is open: a node that is killed or crashes stops counting the moment Redis sees that
connection close, so viewers who reconnect to another node are not counted twice while its registration expires.
A node cut off without its connection closing stops counting `presence_ttl_ms` after its last report.
"""

from __future__ import annotations

from collections import Counter

import redis.asyncio as redis

REGISTRY = "lc:nodes"

# The nodes registered until at least ARGV[1] whose control channel has a subscriber (their pub/sub connection).
_LIVE_NODES = """
local function live_nodes(now_ms)
  local live = {}
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now_ms, '+inf')) do
    if redis.call('PUBSUB', 'NUMSUB', 'lc:node:' .. node .. ':control')[2] > 0 then live[#live + 1] = node end
  end
  return live
end
"""

_ALIVE_SUM = _LIVE_NODES + """
local totals = {}
for i = 3, #ARGV do totals[i - 2] = 0 end
for _, node in ipairs(live_nodes(ARGV[1])) do
  local counts = redis.call('HMGET', 'lc:node:' .. node .. ':' .. ARGV[2], unpack(ARGV, 3))
  for i, c in ipairs(counts) do
    if c then totals[i] = totals[i] + tonumber(c) end
  end
end
return totals
"""

_ACQUIRE_CONNECTION = _LIVE_NODES + """
local total = 0
for _, node in ipairs(live_nodes(ARGV[1])) do
  total = total + tonumber(redis.call('HGET', 'lc:node:' .. node .. ':conns', ARGV[2]) or '0')
end
if total >= tonumber(ARGV[3]) then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
return 1
"""


def control_channel(node_id: str) -> str:
    """The node's own pub/sub channel: subscribed while the node runs, it is how other nodes tell it is alive."""
    return f"lc:node:{node_id}:control"


class Presence:
    """This node's share of the presence data, and the totals across live nodes."""

    def __init__(self, client: redis.Redis, node_id: str, ttl_ms: int) -> None:
        self._redis = client
        self.node_id = node_id
        self._ttl_ms = ttl_ms
        self._alive_sum = client.register_script(_ALIVE_SUM)
        self._acquire = client.register_script(_ACQUIRE_CONNECTION)
        self._rooms_key = f"lc:node:{node_id}:rooms"
        self._conns_key = f"lc:node:{node_id}:conns"

    async def reset(self) -> None:
        """Forget what a previous process with this node id left behind."""
        await self._redis.delete(self._rooms_key, self._conns_key)

    async def report(self, now_ms: int, viewers_by_room: Counter[int]) -> None:
        """Publish this node's viewer counts and extend its registration."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._rooms_key)
            watched = {str(room): n for room, n in viewers_by_room.items() if n > 0}
            if watched:  # a Counter keeps rooms whose last viewer left, at zero
                pipe.hset(self._rooms_key, mapping=watched)
            # Garbage collection for a node that never comes back; liveness itself is the registry score.
            pipe.pexpire(self._rooms_key, self._ttl_ms * 20).pexpire(self._conns_key, self._ttl_ms * 20)
            pipe.zadd(REGISTRY, {self.node_id: now_ms + self._ttl_ms})
            pipe.zremrangebyscore(REGISTRY, "-inf", now_ms - self._ttl_ms * 20)
            await pipe.execute()

    async def leave(self) -> None:
        """A clean shutdown: stop counting at once instead of after the TTL."""
        await self._redis.zrem(REGISTRY, self.node_id)
        await self.reset()

    async def viewer_counts(self, now_ms: int, room_ids: list[int]) -> dict[int, int]:
        if not room_ids:
            return {}
        totals = await self._alive_sum(keys=[REGISTRY], args=[now_ms, "rooms", *room_ids])
        return {room: int(n) for room, n in zip(room_ids, totals, strict=True)}

    async def acquire_connection(self, now_ms: int, user_id: int, limit: int) -> bool:
        """Count one more connection for `user_id` unless they already hold `limit` across live nodes."""
        return bool(await self._acquire(keys=[REGISTRY, self._conns_key], args=[now_ms, user_id, limit]))

    async def release_connection(self, user_id: int) -> None:
        await self._redis.hincrby(self._conns_key, str(user_id), -1)
