"""Each room's WebRTC viewers counted across nodes, so `media_viewers_per_room_max` holds for the whole cluster.

One Redis hash per room, `lc:media:viewers:<room>`, with one field per node: "<viewers> <last refresh, ms>". A node
takes a slot with one script that sums the fields refreshed within `media_owner_ttl_ms` (its own with the count it
is about to hold) and records the new count only when the sum stays within the limit, so two nodes admitting at
once cannot both take the last slot. Each node rewrites its fields every upkeep (about once a second) from what it
actually holds. A node that is killed stops refreshing: its viewers stop counting once its field is older than the
TTL, and the next take deletes the field, so slots are never held by a node that is gone. The whole hash expires
when no node refreshes it. All keys of one script are the room's one hash, so it runs on a Redis Cluster too.
"""

from __future__ import annotations

import redis.asyncio as redis

from livecore.clock import Clock

_TAKE = """
local now_ms, ttl_ms, count, limit = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local fields = redis.call('HGETALL', KEYS[1])
local total = count
for i = 1, #fields, 2 do
  if fields[i] ~= ARGV[1] then
    local viewers, seen = string.match(fields[i + 1], '^(%d+) (%d+)$')
    if viewers and now_ms - tonumber(seen) <= ttl_ms then
      total = total + tonumber(viewers)
    else
      redis.call('HDEL', KEYS[1], fields[i])
    end
  end
end
if total > limit then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], count .. ' ' .. now_ms)
redis.call('PEXPIRE', KEYS[1], ttl_ms * 2)
return 1
"""


def _key(room_id: int) -> str:
    return f"lc:media:viewers:{room_id}"


class ViewerSlots:
    """This node's share of each room's viewer slots, kept in Redis next to the other nodes' shares."""

    def __init__(self, client: redis.Redis, node_id: str, ttl_ms: int, clock: Clock) -> None:
        self._redis = client
        self.node_id = node_id
        self._ttl_ms = ttl_ms
        self._clock = clock
        self._take = client.register_script(_TAKE)
        self.held: dict[int, int] = {}  # room -> slots this node holds (viewers admitted, not yet gone)

    async def take(self, room_id: int, limit: int) -> bool:
        """Hold one more viewer slot of `room_id` unless the cluster already has `limit` viewers in it."""
        count = self.held.get(room_id, 0) + 1
        self.held[room_id] = count  # before the round trip: a concurrent take on this node counts this one
        try:
            taken = await self._take(keys=[_key(room_id)], args=[self.node_id, self._clock.now_ms(), self._ttl_ms,
                                                                  count, limit])
        except BaseException:
            self._forget(room_id)
            raise
        if not taken:
            self._forget(room_id)
        return bool(taken)

    async def give_back(self, room_id: int) -> None:
        """A viewer left: its slot is free for every node now."""
        self._forget(room_id)
        count = self.held[room_id]
        if count:
            await self._redis.hset(_key(room_id), self.node_id, f"{count} {self._clock.now_ms()}")
        else:
            await self._redis.hdel(_key(room_id), self.node_id)

    async def refresh(self) -> None:
        """Write this node's count for every room it has held a slot in since the last refresh."""
        now_ms = self._clock.now_ms()
        async with self._redis.pipeline(transaction=False) as pipe:
            for room_id, count in self.held.items():
                if count:
                    pipe.hset(_key(room_id), self.node_id, f"{count} {now_ms}")
                    pipe.pexpire(_key(room_id), self._ttl_ms * 2)
                else:
                    pipe.hdel(_key(room_id), self.node_id)
            await pipe.execute()
        self.held = {room_id: count for room_id, count in self.held.items() if count}

    async def release_all(self) -> None:
        """This node is stopping: its slots are free at once."""
        for room_id in self.held:
            self.held[room_id] = 0
        await self.refresh()

    def _forget(self, room_id: int) -> None:
        self.held[room_id] = max(0, self.held.get(room_id, 0) - 1)
