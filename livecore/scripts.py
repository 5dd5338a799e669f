"""Many calls of one Redis Lua script in one round trip.

redis-py's pipelines ask `SCRIPT EXISTS` before every execute that holds a script: a second round trip each time,
on the paths that publish room events. Here the calls go as plain EVALSHA and the script is loaded only when Redis
answers NOSCRIPT (after a restart or SCRIPT FLUSH); the calls refused that way did not run, and run again.

redis-py refuses scripts in a Redis Cluster pipeline: there the calls are grouped by hash slot, each group runs in
order (a room's events keep their order) and the groups run at once. `call_each` lets the groups fail apart: a slot
whose shard is down fails its own calls (its first failure and every later call of the slot, which must not overtake
it), and the other slots' calls still count. On one server the calls share one connection's fate.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import redis.asyncio as redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

Calls = list[tuple[list[Any], list[Any]]]


async def call_many(client: redis.Redis, script: AsyncScript, calls: Calls) -> list[Any]:
    """The replies of `script` run with each (keys, args) in `calls`, in order; raises the first error."""
    if isinstance(client, RedisCluster):
        return _raise_first(await _call_each_on_cluster(client, script, calls))
    async with client.pipeline(transaction=False) as pipe:
        for keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        replies = await pipe.execute(raise_on_error=False)
    refused = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if refused:
        await client.script_load(script.script)
        for i, reply in zip(refused, await call_many(client, script, [calls[i] for i in refused]), strict=True):
            replies[i] = reply
    return _raise_first(replies)


async def call_each(client: redis.Redis, script: AsyncScript, calls: Calls) -> list[Any]:
    """Like `call_many`, but on a cluster a failed call's reply is its exception, and only the calls of its slot
    from it on fail with it; on one server any failure is raised, as every call shared it."""
    if isinstance(client, RedisCluster):
        return await _call_each_on_cluster(client, script, calls)
    return await call_many(client, script, calls)


def _raise_first(replies: list[Any]) -> list[Any]:
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


async def _call_each_on_cluster(client: RedisCluster, script: AsyncScript, calls: Calls) -> list[Any]:
    by_slot: dict[int, list[int]] = defaultdict(list)
    for i, (keys, _) in enumerate(calls):
        by_slot[client.keyslot(keys[0]) if keys else -1].append(i)
    replies: list[Any] = [None] * len(calls)

    async def run(indexes: list[int]) -> None:
        for n, i in enumerate(indexes):
            keys, args = calls[i]
            try:
                replies[i] = await _call_on_cluster(client, script, keys, args)
            except Exception as exc:  # the rest of the slot waits behind this one: it fails with it, not run
                for j in indexes[n:]:
                    replies[j] = exc
                return

    await asyncio.gather(*(run(indexes) for indexes in by_slot.values()))
    return replies


async def _call_on_cluster(client: RedisCluster, script: AsyncScript, keys: list[Any], args: list[Any]) -> Any:
    """One call; a NOSCRIPT loads the script on the shard of the call's slot only (redis-py's own fallback loads it
    on every primary, and so failed while any shard was down)."""
    try:
        return await client.evalsha(script.sha, len(keys), *keys, *args)
    except NoScriptError:
        await client.execute_command("SCRIPT LOAD", script.script, target_nodes=client.get_node_from_key(keys[0]))
        return await client.evalsha(script.sha, len(keys), *keys, *args)
