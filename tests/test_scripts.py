"""Many calls of one Lua script in one round trip, against the real Valkey: in order, and after a SCRIPT FLUSH."""

from __future__ import annotations

import secrets

import pytest
import redis.asyncio as redis
from livenode import Servers
from redis.exceptions import ResponseError

from livecore.scripts import call_many


async def test_calls_run_in_order_and_survive_a_script_flush(servers: Servers) -> None:
    client = redis.Redis.from_url(servers.redis_url)
    try:
        script = client.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        key = f"test:scripts:{secrets.token_hex(4)}"
        assert await call_many(client, script, [([key], [1]), ([key], [2])]) == [1, 3]
        await client.script_flush()  # what a restarted Redis has forgotten
        assert await call_many(client, script, [([key], [3]), ([key], [4])]) == [6, 10]
        with pytest.raises(ResponseError):
            await call_many(client, script, [([key], ["not a number"])])
        await client.delete(key)
    finally:
        await client.aclose()
