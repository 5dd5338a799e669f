"""Gift combos: repeats of one gift by one sender in one room within a window count up, then end.

The state lives in Redis so every node agrees: a hash of running counts and a sorted set of deadlines. A combo
ends when its deadline passes; whichever node's sweep removes it first announces the end, exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as redis

from livecore import scripts

_KEYS = ["lc:{gifts}:combo:count", "lc:{gifts}:combo:deadline", "lc:{gifts}:combo:info"]

# Returns {combo, ended member info or '', ended count}: a hit after an unswept deadline starts a new combo. A hit
# names its gift's event id (KEYS[4]): the answer is kept for `hit_remembered_ms`, and a second hit with that id
# (the outbox relay trying a round again) changes nothing and gets the same answer.
_HIT = """
local done = redis.call('GET', KEYS[4])
if done then
  local combo, ended_count, ended_info = string.match(done, '^(%d+)|(%d+)|(.*)$')
  return {tonumber(combo), ended_info, tonumber(ended_count)}
end
local deadline = redis.call('ZSCORE', KEYS[2], ARGV[1])
local ended_info, ended_count = '', 0
if deadline and tonumber(deadline) < tonumber(ARGV[3]) then
  ended_info = redis.call('HGET', KEYS[3], ARGV[1]) or '{}'
  ended_count = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
  redis.call('HDEL', KEYS[1], ARGV[1])
end
local combo = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], tonumber(ARGV[3]) + tonumber(ARGV[4]), ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[5])
redis.call('SET', KEYS[4], combo .. '|' .. ended_count .. '|' .. ended_info, 'PX', ARGV[6])
return {combo, ended_info, ended_count}
"""

_SWEEP = """
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, member in ipairs(due) do
  out[#out + 1] = redis.call('HGET', KEYS[3], member) or '{}'
  out[#out + 1] = redis.call('HGET', KEYS[1], member) or '0'
  redis.call('ZREM', KEYS[2], member)
  redis.call('HDEL', KEYS[1], member)
  redis.call('HDEL', KEYS[3], member)
end
return out
"""


@dataclass(frozen=True)
class ComboEnd:
    stream_id: int
    event: dict[str, Any]


class Combos:
    def __init__(self, client: redis.Redis, window_ms: int, sweep_batch_max: int, hit_remembered_ms: int) -> None:
        self._client = client
        self._window_ms = window_ms
        self._hit_remembered_ms = hit_remembered_ms
        self._batch_max = sweep_batch_max
        self._hit = client.register_script(_HIT)
        self._sweep = client.register_script(_SWEEP)

    async def hit_many(
        self, hits: list[tuple[int, int, dict[str, Any], dict[str, Any], int, str]]
    ) -> list[tuple[int, ComboEnd | None]]:
        """For each (now_ms, stream_id, sender, gift, count, event_id) in order, in one round trip: the running
        combo count after it, and the end of a lapsed combo it replaced, if any; a hit seen before (by its event id)
        counts nothing again and gets its first answer."""
        if not hits:
            return []
        calls = []
        for now_ms, stream_id, sender, gift, count, event_id in hits:
            member = f"{stream_id}:{sender['id']}:{gift['id']}"
            info = orjson.dumps({"stream_id": stream_id, "user": sender, "gift": gift}).decode()
            calls.append(([*_KEYS, f"lc:{{gifts}}:combo:hit:{event_id}"],
                          [member, count, now_ms, self._window_ms, info, self._hit_remembered_ms]))
        replies = await scripts.call_many(self._client, self._hit, calls)
        return [(int(combo), _combo_end(ended_info, int(ended_count)) if ended_info else None)
                for combo, ended_info, ended_count in replies]

    async def due(self, now_ms: int) -> list[ComboEnd]:
        """Claim every combo whose window has passed; each is returned to exactly one caller on any node."""
        flat = await self._sweep(keys=_KEYS, args=[now_ms, self._batch_max])
        return [_combo_end(flat[i], int(flat[i + 1])) for i in range(0, len(flat), 2)]


def _combo_end(raw_info: bytes | str, combo: int) -> ComboEnd:
    info = orjson.loads(raw_info)
    return ComboEnd(info["stream_id"], {"type": "gift_end", "user": info["user"], "gift": info["gift"],
                                        "combo": combo})
