"""Who is asking for a feed: their age, region, interests, whom they follow and whom they never want to see."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from livecore.accounts import Account, is_adult
from livecore.node import Node


@dataclass(frozen=True)
class Viewer:
    id: int
    adult: bool
    region: str
    language: str
    interests: tuple[str, ...]
    following: frozenset[int]
    excluded: frozenset[int]  # authors said "not interested" in, reported or blocked
    blocked: frozenset[int]  # authors reported or blocked: not even in Following


async def load_viewer(node: Node, account: Account) -> Viewer:
    row = await node.pool.fetchrow(
        "SELECT array(SELECT followee_id FROM follows WHERE follower_id = $1) AS following,"
        " array(SELECT author_id FROM feed_exclusions WHERE user_id = $1) AS excluded,"
        " array(SELECT author_id FROM feed_exclusions WHERE user_id = $1 AND reason <> 'not_interested') AS blocked",
        account.id)
    return Viewer(account.id, is_adult(account, node.today()), account.region, account.language,
                  tuple(i.lower() for i in account.interests), frozenset(row["following"]),
                  frozenset(row["excluded"]), frozenset(row["blocked"]))


async def followers_of(pool: asyncpg.Pool, author_id: int) -> list[int]:
    return [r["follower_id"] for r in await pool.fetch("SELECT follower_id FROM follows WHERE followee_id = $1",
                                                         author_id)]


async def authors_followed_by_more_than(pool: asyncpg.Pool, followers_max: int) -> frozenset[int]:
    rows = await pool.fetch("SELECT followee_id FROM follows GROUP BY followee_id HAVING count(*) > $1",
                            followers_max)
    return frozenset(r["followee_id"] for r in rows)
