"""The media node registry in Redis: which node owns (ingests) each room, and where each media node is reached.

`lc:media:owner:<room>` -> node id and `lc:media:node:<node>` -> its internal URL (where other nodes reach it, never
a load balancer's), both with a TTL the owner keeps refreshing, so a dead node's rooms are free again within
`media_owner_ttl_ms`.
"""

from __future__ import annotations

import redis.asyncio as redis

from livecore import redisclient

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _owner_key(room_id: int) -> str:
    return f"lc:media:owner:{room_id}"


def _node_key(node_id: str) -> str:
    return f"lc:media:node:{node_id}"


class MediaRegistry:
    def __init__(self, client: redis.Redis, node_id: str, ttl_ms: int) -> None:
        self._redis = client
        self.node_id = node_id
        self._ttl_ms = ttl_ms
        self._release = client.register_script(_RELEASE)

    async def claim(self, room_id: int) -> bool:
        """Become the room's owner unless another live node is; claiming a room this node owns succeeds."""
        if await self._redis.set(_owner_key(room_id), self.node_id, nx=True, px=self._ttl_ms):
            return True
        return await self.owner(room_id) == self.node_id

    async def owner(self, room_id: int) -> str | None:
        raw = await self._redis.get(_owner_key(room_id))
        return raw.decode() if raw else None

    async def owned(self, room_ids: list[int]) -> set[int]:
        """The rooms among `room_ids` that some live node owns (has a publisher for) right now."""
        if not room_ids:
            return set()
        owners = await redisclient.get_many(self._redis, [_owner_key(room_id) for room_id in room_ids])
        return {room_id for room_id, owner in zip(room_ids, owners, strict=True) if owner}

    async def release(self, room_id: int) -> None:
        await self._release(keys=[_owner_key(room_id)], args=[self.node_id])

    async def refresh(self, room_ids: list[int], internal_url: str) -> None:
        """Extend this node's ownerships and its address."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(_node_key(self.node_id), internal_url, px=self._ttl_ms)
            for room_id in room_ids:
                pipe.set(_owner_key(room_id), self.node_id, px=self._ttl_ms)
            await pipe.execute()

    async def node_url(self, node_id: str) -> str | None:
        raw = await self._redis.get(_node_key(node_id))
        return raw.decode() if raw else None

    async def owners(self, room_ids: list[int]) -> list[str | None]:
        """The owner of each room (None where no live node owns it), in one round trip."""
        if not room_ids:
            return []
        raw = await redisclient.get_many(self._redis, [_owner_key(room_id) for room_id in room_ids])
        return [value.decode() if value else None for value in raw]

    async def live_nodes(self, node_ids: set[str]) -> set[str]:
        """Those of `node_ids` whose address is registered, i.e. that refreshed within the TTL."""
        ordered = sorted(node_ids)
        if not ordered:
            return set()
        found = await redisclient.get_many(self._redis, [_node_key(node_id) for node_id in ordered])
        return {node_id for node_id, url in zip(ordered, found, strict=True) if url}

    async def leave(self, room_ids: list[int]) -> None:
        for room_id in room_ids:
            await self.release(room_id)
        await self._redis.delete(_node_key(self.node_id))
