"""Per-viewer Following timelines in Redis: video ids, newest first, capped, expiring when unread.

A timeline holds the videos of the authors it was built for (those with at most `fanout_followers_max`
followers), and a fingerprint of that author set. A new video is written into each follower's timeline that
exists (fan-out on write); a timeline that is missing, or whose author set changed (a follow, an unfollow, an author
crossing the threshold), is rebuilt from PostgreSQL when read. Redis holds nothing that cannot be rebuilt.
"""

from __future__ import annotations

import hashlib

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


def timeline_key(user_id: int) -> str:
    return f"feeds:tl:{{{user_id}}}"


def fingerprint_key(user_id: int) -> str:
    return f"feeds:tlf:{{{user_id}}}"


def fingerprint(author_ids: list[int]) -> str:
    return hashlib.blake2b(",".join(map(str, sorted(author_ids))).encode(), digest_size=12).hexdigest()


class Timelines:
    def __init__(self, client: redis.Redis, pool: asyncpg.Pool, entries_max: int, ttl_s: int,
                 batch_max: int) -> None:
        self.redis = client
        self.pool = pool
        self.entries_max = entries_max
        self.ttl_s = ttl_s
        self.batch_max = batch_max
        self._add = client.register_script(_ADD_IF_BUILT)

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
        """The viewer's timeline from PostgreSQL: the newest ready videos of `author_ids`, newest first, as written."""
        rows = await self.pool.fetch(
            "SELECT id FROM videos WHERE author_id = ANY($1) AND state = 'ready' ORDER BY id DESC LIMIT $2",
            author_ids, self.entries_max) if author_ids else []
        key = timeline_key(user_id)
        mapping = {str(BUILT): BUILT, **{str(r["id"]): r["id"] for r in rows}}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.zadd(key, mapping)
            pipe.expire(key, self.ttl_s)
            pipe.set(fingerprint_key(user_id), fingerprint(author_ids), ex=self.ttl_s)
            await pipe.execute()
        return [r["id"] for r in rows]

    async def drop(self, user_id: int) -> None:
        await self.redis.delete(timeline_key(user_id), fingerprint_key(user_id))
