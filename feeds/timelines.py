"""Per-viewer Following timelines in Redis: video ids, newest first, capped, expiring when unread.

A timeline holds the videos of the authors it was built for (those with at most `fanout_followers_max`
followers), and a fingerprint of that author set. A new video is written into each follower's timeline that
exists (fan-out on write); a timeline that is missing, or whose author set changed (a follow, an unfollow, an author
crossing the threshold), is rebuilt from PostgreSQL when read. Redis holds nothing that cannot be rebuilt.

A rebuild is one PostgreSQL read and one Lua call that gets the ids as a single argument, and a node runs one
rebuild per viewer and author set at a time however many of that viewer's pages ask for it at once: after Valkey
loses its data every active viewer's next page rebuilds, and that burst was the Following feed's p99.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable

import asyncpg
import redis.asyncio as redis

from livecore import scripts

BUILT = 0  # a member with score 0 marks a timeline as built, so an empty one is not rebuilt on every read

# Add one video to a timeline that exists, and trim it to the newest ARGV[2] (rank 0 is the marker).
_ADD_IF_BUILT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[1])
  redis.call('ZREMRANGEBYRANK', KEYS[1], 1, -(tonumber(ARGV[2]) + 1))
  return 1
end
return 0
"""

# Replace a timeline by the marker and the ids in ARGV[1] (decimal, comma separated, newest first) and set its
# fingerprint, atomically; both expire after ARGV[2] s. The ids come as one argument because encoding one argument
# per id was most of a rebuild's CPU on the node (redis-py packs each in Python).
_REPLACE = """
redis.call('DEL', KEYS[1])
local members = {'0', '0'}
for id in string.gmatch(ARGV[1], '%d+') do
  members[#members + 1] = id
  members[#members + 1] = id
  if #members >= 1000 then  -- ZADD in parts: Lua's unpack has a stack limit (8000 values)
    redis.call('ZADD', KEYS[1], unpack(members))
    members = {}
  end
end
if #members > 0 then
  redis.call('ZADD', KEYS[1], unpack(members))
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[2])
return 1
"""


def timeline_key(user_id: int) -> str:
    return f"feeds:tl:{{{user_id}}}"


def fingerprint_key(user_id: int) -> str:
    return f"feeds:tlf:{{{user_id}}}"


def fingerprint(author_ids: list[int]) -> str:
    return hashlib.blake2b(",".join(map(str, sorted(author_ids))).encode(), digest_size=12).hexdigest()


class Timelines:
    def __init__(self, client: redis.Redis, pool: asyncpg.Pool, entries_max: int, ttl_s: int,
                 batch_max: int, rebuilt: Callable[[], None] = lambda: None) -> None:
        self.redis = client
        self.pool = pool
        self.entries_max = entries_max
        self.ttl_s = ttl_s
        self.batch_max = batch_max
        self.rebuilt = rebuilt  # told of each rebuild this node runs
        self._add = client.register_script(_ADD_IF_BUILT)
        self._replace = client.register_script(_REPLACE)
        # Rebuilds running on this node by (viewer, fingerprint): at most one per in-flight page, so bounded by them.
        self._rebuilding: dict[tuple[int, str], asyncio.Future[list[int]]] = {}

    async def fan_out(self, video_id: int, follower_ids: list[int]) -> int:
        """Write a video into its author's followers' timelines (those that exist); how many were written."""
        written = 0
        for start in range(0, len(follower_ids), self.batch_max):
            calls = [([timeline_key(follower_id)], [video_id, self.entries_max])
                     for follower_id in follower_ids[start:start + self.batch_max]]
            written += sum(await scripts.call_many(self.redis, self._add, calls))
        return written

    async def page(self, user_id: int, author_ids: list[int], before_id: int | None,
                   count: int) -> tuple[list[int], bool]:
        """Up to `count` video ids below `before_id`, newest first, from the viewer's timeline (rebuilt first when
        missing or built for other authors); and whether older videos may have been trimmed off it."""
        key = timeline_key(user_id)
        wanted = fingerprint(author_ids)
        high = f"({before_id}" if before_id is not None else "+inf"
        # One round trip when the timeline is there and current (nearly always); a rebuild answers from what it read.
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(fingerprint_key(user_id))
            pipe.zcard(key)
            pipe.zrevrangebyscore(key, high, f"({BUILT}", start=0, num=count)
            pipe.expire(key, self.ttl_s)
            pipe.expire(fingerprint_key(user_id), self.ttl_s)
            stored, size, ids, _, _ = await pipe.execute()
        if stored is None or stored.decode() != wanted or size == 0:
            newest = await self.rebuild(user_id, author_ids)
            size = len(newest) + 1  # with the marker
            return [i for i in newest if before_id is None or i < before_id][:count], size > self.entries_max
        return [int(i) for i in ids], size > self.entries_max

    async def rebuild(self, user_id: int, author_ids: list[int]) -> list[int]:
        """The viewer's timeline from PostgreSQL: the newest ready videos of `author_ids`, newest first, as written.
        Concurrent calls for the same viewer and authors share one read and one write."""
        running = self._rebuilding.get(wanted := (user_id, fingerprint(author_ids)))
        if running is None:
            running = asyncio.ensure_future(self._rebuild(user_id, author_ids, wanted[1]))
            self._rebuilding[wanted] = running
            self.rebuilt()
            running.add_done_callback(lambda done: self._rebuild_done(wanted, done))
        # Shielded: a page that gives up (its client went away) does not cancel the rebuild others wait for.
        return await asyncio.shield(running)

    def _rebuild_done(self, wanted: tuple[int, str], done: asyncio.Future[list[int]]) -> None:
        del self._rebuilding[wanted]
        if not done.cancelled():
            done.exception()  # retrieved here too: every page that waited for it may have gone

    async def _rebuild(self, user_id: int, author_ids: list[int], author_fingerprint: str) -> list[int]:
        ids: list[int] = await self.pool.fetchval(
            "SELECT array(SELECT id FROM videos WHERE author_id = ANY($1) AND state = 'ready'"
            " ORDER BY id DESC LIMIT $2)", author_ids, self.entries_max) if author_ids else []
        await self._replace(keys=[timeline_key(user_id), fingerprint_key(user_id)],
                            args=[",".join(map(str, ids)), self.ttl_s, author_fingerprint])
        return ids

    async def drop(self, user_id: int) -> None:
        await self.redis.delete(timeline_key(user_id), fingerprint_key(user_id))
