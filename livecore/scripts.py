"""Many calls of one Redis Lua script in one round trip.

redis-py's pipelines ask `SCRIPT EXISTS` before every execute that holds a script: a second round trip each time,
on the paths that publish room events. Here the calls go as plain EVALSHA and the script is loaded only when Redis
answers NOSCRIPT (after a restart or SCRIPT FLUSH); the calls refused that way did not run, and run again.

redis-py refuses scripts in a Redis Cluster pipeline: there the calls are grouped by hash slot, each group runs in
order (a room's events keep their order) and the groups run at once.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError


async def call_many(client: redis.Redis, script: AsyncScript, calls: list[tuple[list[Any], list[Any]]]) -> list[Any]:
    """The replies of `script` run with each (keys, args) in `calls`, in order; raises the first error."""
    if isinstance(client, RedisCluster):
        return await _call_many_on_cluster(client, script, calls)
    async with client.pipeline(transaction=False) as pipe:
        for keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        replies = await pipe.execute(raise_on_error=False)
    refused = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if refused:
        await client.script_load(script.script)
        for i, reply in zip(refused, await call_many(client, script, [calls[i] for i in refused]), strict=True):
            replies[i] = reply
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


async def _call_many_on_cluster(client: RedisCluster, script: AsyncScript, calls: list[tuple[list[Any], list[Any]]]
                                ) -> list[Any]:
    by_slot: dict[int, list[int]] = defaultdict(list)
    for i, (keys, _) in enumerate(calls):
        by_slot[client.keyslot(keys[0]) if keys else -1].append(i)
    replies: list[Any] = [None] * len(calls)

    async def run(indexes: list[int]) -> None:
        for i in indexes:
            keys, args = calls[i]
            replies[i] = await script(keys=keys, args=args, client=client)

    await asyncio.gather(*(run(indexes) for indexes in by_slot.values()))
    return replies
