"""Helpers for the marketplace tests: crowds of followers and ready videos written straight into the tables the
cards are computed from (hashing a password per follower would take minutes), and calls through the real HTTP API."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

import asyncpg
from livenode import RunningNode

from commerce.providers import SUCCEEDING_CARD

NO_PASSWORD = "!"  # not a hash any password matches: these accounts never log in


@dataclass(frozen=True)
class Person:
    birth_date: dt.date
    region: str
    interests: tuple[str, ...]


async def make_people(pool: asyncpg.Pool, people: list[Person]) -> list[int]:
    """Accounts for `people`, in order; their ids."""
    rows = await pool.fetch(
        "INSERT INTO accounts (username, password_hash, display_name, birth_date, region, interests)"
        " SELECT u, $2, u, b, r, string_to_array(i, ',') FROM unnest($1::text[], $3::date[], $4::text[], $5::text[])"
        " AS x (u, b, r, i) RETURNING id",
        [f"f{secrets.token_hex(6)}" for _ in people], NO_PASSWORD, [p.birth_date for p in people],
        [p.region for p in people], [",".join(p.interests) for p in people])
    ids = [r["id"] for r in rows]
    assert len(ids) == len(people)
    return ids


async def follow(pool: asyncpg.Pool, follower_ids: list[int], creator_id: int,
                 created_at: dt.datetime | None = None) -> None:
    await pool.execute(
        "INSERT INTO follows (follower_id, followee_id, created_at) SELECT f, $2, coalesce($3, now())"
        " FROM unnest($1::bigint[]) AS f", follower_ids, creator_id, created_at)


async def ready_videos(pool: asyncpg.Pool, creator_id: int, counts: list[tuple[int, int, int]]) -> list[int]:
    """Ready videos of the creator with (views, likes, shares) each; their ids."""
    rows = await pool.fetch(
        "INSERT INTO videos (author_id, caption, state, views, likes, shares, duration_ms, width, height, ready_at)"
        " SELECT $1, 'made for a test', 'ready', v, l, s, 1000, 320, 240, now()"
        " FROM unnest($2::bigint[], $3::bigint[], $4::bigint[]) AS x (v, l, s) RETURNING id",
        creator_id, [c[0] for c in counts], [c[1] for c in counts], [c[2] for c in counts])
    return [r["id"] for r in rows]


async def grant(pool: asyncpg.Pool, user_id: int, role: str) -> None:
    await pool.execute("UPDATE accounts SET roles = array_append(roles, $2) WHERE id = $1 AND NOT $2 = ANY(roles)",
                       user_id, role)


async def api(node: RunningNode, method: str, path: str, token: str | None = None, json: Any = None,
              headers: dict[str, str] | None = None) -> tuple[int, Any]:
    sent = {**({"Authorization": f"Bearer {token}"} if token else {}), **(headers or {})}
    async with node.http.request(method, node.url + path, json=json, headers=sent) as response:
        return response.status, await response.json(content_type=None)


async def buy_coins(node: RunningNode, token: str, package_id: str) -> None:
    """Buy a package with the local provider's succeeding test card; the coins come from its signed webhook."""
    status, purchase = await api(node, "POST", "/api/coins/purchases", token,
                                 {"package_id": package_id, "idempotency_key": secrets.token_hex(8)})
    assert status == 201, purchase
    status, paid = await api(node, "POST", f"/api/payments/local/{purchase['id']}/confirm", token,
                             {"card_number": SUCCEEDING_CARD})
    assert status == 200 and paid["state"] == "succeeded", paid


async def balance(pool: asyncpg.Pool, owner_id: int, kind: str) -> int:
    return await pool.fetchval("SELECT coalesce(sum(balance), 0)::bigint FROM ledger_accounts"
                               " WHERE owner_id = $1 AND kind = $2", owner_id, kind)


async def listed_creator(node: RunningNode, followers: int, videos: int = 3) -> dict[str, Any]:
    """A signed-up adult creator with `followers` adult followers and `videos` ready videos, listed."""
    pool = node.node.pool
    creator = await node.signup()
    crowd = await make_people(pool, [Person(dt.date(1995, 5, 5), "US", ("music",))] * followers)
    await follow(pool, crowd, creator["id"])
    await ready_videos(pool, creator["id"], [(100, 10, 1)] * videos)
    status, card = await api(node, "PUT", "/api/marketplace/listing", creator["token"], {"listed": True})
    assert status == 200, card
    return creator


async def advertiser(node: RunningNode) -> dict[str, Any]:
    account = await node.signup()
    await grant(node.node.pool, account["id"], "advertiser")
    return account
