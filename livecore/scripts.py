"""Many calls of one Redis Lua script in one round trip.

redis-py's pipelines ask `SCRIPT EXISTS` before every execute that holds a script: a second round trip each time,
on the paths that publish room events. Here the calls go as plain EVALSHA and the script is loaded only when Redis
answers NOSCRIPT (after a restart or SCRIPT FLUSH); the calls refused that way did not run, and run again.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError


async def call_many(client: redis.Redis, script: AsyncScript, calls: list[tuple[list[Any], list[Any]]]) -> list[Any]:
    """The replies of `script` run with each (keys, args) in `calls`, in order; raises the first error."""
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
