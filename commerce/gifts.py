"""Sending a gift: one journal transaction (viewer coins -> creator held diamonds + platform share), a room event
with its combo count, and the per-stream top-gifter board kept beside it (derived, rebuildable)."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import asyncpg

from commerce import ledger, rules
from commerce.ledger import Leg
from livecore.accounts import Account
from livecore.http import Problem
from livecore.streams import get_stream

if TYPE_CHECKING:
    from commerce.service import Commerce

log = logging.getLogger("livecore.commerce.gifts")

_SPEND_TODAY = (
    "INSERT INTO gift_daily_spend (sender_id, day, coins) VALUES ($1, $2, $3)"
    " ON CONFLICT (sender_id, day) DO UPDATE SET coins = gift_daily_spend.coins + EXCLUDED.coins"
    " WHERE gift_daily_spend.coins + EXCLUDED.coins <= $4 RETURNING coins"
)
_LEADERS_ADD = (
    "INSERT INTO gift_leaders (stream_id, sender_id, coins) VALUES ($1, $2, $3)"
    " ON CONFLICT (stream_id, sender_id) DO UPDATE SET coins = gift_leaders.coins + EXCLUDED.coins"
)


async def send_gift(
    commerce: Commerce, sender: Account, stream_id: int, gift_id: str, count: int, idempotency_key: str
) -> dict[str, Any]:
    """Send `count` of a gift to a live stream's creator; a retry with the same key returns the first result."""
    node, settings = commerce.node, commerce.node.settings
    rules.require_adult(sender, node.today(), "send gifts")
    gift = commerce.catalogue.gifts.get(gift_id)
    if gift is None:
        raise Problem(404, "gift-not-found", f"there is no gift {gift_id!r} in the current catalogue")
    if not 1 <= count <= settings.gift_count_per_send_max:
        raise Problem(400, "invalid-field", f"count must be from 1 to {settings.gift_count_per_send_max}",
                      field="count", rule="gift_count_per_send_max")
    external_id = f"gift:{sender.id}:{idempotency_key}"
    previous = await ledger.find_transaction(node.pool, external_id)
    if previous is not None:
        return await _replayed(commerce, sender.id, previous)
    stream = await get_stream(node.pool, stream_id)
    if stream is None:
        raise Problem(404, "stream-not-found", f"there is no stream {stream_id}")
    if stream.state != "live":
        raise Problem(409, "stream-not-live", "gifts can only be sent to a live stream")
    if stream.creator_id == sender.id:
        raise Problem(400, "self-gift", "you cannot send gifts to your own stream")
    coins = gift.coins * count
    now_ms = node.clock.now_ms()
    details = {"gift_id": gift.id, "gift_version": commerce.catalogue.gift_version, "count": count,
               "coins": coins, "rate_version": commerce.catalogue.rate.version, "creator_id": stream.creator_id}
    legs = await _gift_legs(commerce, sender.id, stream.creator_id, coins, external_id)
    async with node.pool.acquire() as conn, conn.transaction():
        tx_id = await ledger.post(conn, "gift", external_id, now_ms, legs, actor_id=sender.id,
                                  stream_id=stream_id, details=details)
        if tx_id is None:  # a concurrent retry with the same key committed first
            previous = await ledger.find_transaction(conn, external_id)
            assert previous is not None
            return await _replayed(commerce, sender.id, previous)
        spent = await conn.fetchval(_SPEND_TODAY, sender.id, rules.utc_day(now_ms), coins,
                                    settings.gift_coins_per_day_max)
        if spent is None:
            raise rules.daily_spend_refused(settings.gift_coins_per_day_max, coins)
        await conn.execute(_LEADERS_ADD, stream_id, sender.id, coins)
        balance = await conn.fetchval("SELECT balance FROM ledger_accounts WHERE id = $1", legs[0].account_id)
    commerce.metrics.gifts.inc()
    sender_public = {"id": sender.id, "name": sender.display_name}
    await _announce(commerce, stream_id, tx_id, sender_public, asdict(gift), count, now_ms)
    return {"transaction_id": tx_id, "stream_id": stream_id, "gift_id": gift.id, "count": count, "coins": coins,
            "coins_balance": balance, "replayed": False}


async def _gift_legs(commerce: Commerce, sender_id: int, creator_id: int, coins: int, spread: str) -> list[Leg]:
    accounts = commerce.accounts
    creator_diamonds, platform_diamonds = commerce.catalogue.rate.split(coins)
    wallet = await accounts.user(sender_id, ledger.COINS)
    held = await accounts.user_shard(creator_id, ledger.EARNINGS_HELD, spread)
    return [
        Leg(wallet, ledger.COIN, -coins),
        Leg(await accounts.platform(ledger.COIN_ISSUANCE, spread), ledger.COIN, coins),
        Leg(await accounts.platform(ledger.DIAMOND_ISSUANCE, spread), ledger.DIAMOND,
            -(creator_diamonds + platform_diamonds)),
        Leg(held, ledger.DIAMOND, creator_diamonds),
        Leg(await accounts.platform(ledger.PLATFORM_REVENUE, spread), ledger.DIAMOND, platform_diamonds),
    ]


async def _replayed(commerce: Commerce, sender_id: int, previous: asyncpg.Record) -> dict[str, Any]:
    details = ledger.details_of(previous)
    balances = await ledger.balances(commerce.node.pool, sender_id)
    return {"transaction_id": previous["id"], "stream_id": previous["stream_id"], "gift_id": details["gift_id"],
            "count": details["count"], "coins": details["coins"],
            "coins_balance": balances.get("coins", {}).get("balance", 0), "replayed": True}


async def _announce(
    commerce: Commerce, stream_id: int, tx_id: int, sender: dict[str, Any], gift: dict[str, Any], count: int,
    now_ms: int,
) -> None:
    """Publish the gift (and the end of a lapsed combo it replaced); the money is already committed."""
    rooms = commerce.node.rooms
    if rooms is None:
        return
    try:
        combo, ended = await commerce.combos.hit(stream_id, sender, gift, count, now_ms)
        if ended is not None:
            await rooms.publish(ended.stream_id, ended.event)
        await rooms.publish(stream_id, {"type": "gift", "id": tx_id, "user": sender, "gift": gift, "count": count,
                                        "combo": combo})
    except Exception:
        log.exception("gift %d is committed but its room event could not be published", tx_id)


async def end_due_combos(commerce: Commerce) -> int:
    """Announce `gift_end` for every combo whose window has passed by the node's clock; how many ended."""
    ended = await commerce.combos.due(commerce.node.clock.now_ms())
    if commerce.node.rooms is not None:
        for end in ended:
            await commerce.node.rooms.publish(end.stream_id, end.event)
    return len(ended)


async def leaderboard(pool: asyncpg.Pool, stream_id: int, limit: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT l.sender_id, l.coins, a.username, a.display_name FROM gift_leaders l"
        " JOIN accounts a ON a.id = l.sender_id WHERE l.stream_id = $1 ORDER BY l.coins DESC, l.sender_id"
        " LIMIT $2",
        stream_id, limit,
    )
    return [{"rank": i + 1, "user": {"id": r["sender_id"], "username": r["username"], "name": r["display_name"]},
             "coins": r["coins"]} for i, r in enumerate(rows)]


async def rebuild_leaderboard(pool: asyncpg.Pool, stream_id: int) -> None:
    """Recompute a stream's top gifters from the journal (the board is derived data)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('gift_leaders'), $1::int)", stream_id)
        await conn.execute("DELETE FROM gift_leaders WHERE stream_id = $1", stream_id)
        await conn.execute(
            "INSERT INTO gift_leaders (stream_id, sender_id, coins) SELECT stream_id, actor_id,"
            " sum((details->>'coins')::bigint) FROM ledger_transactions WHERE kind = 'gift' AND stream_id = $1"
            " GROUP BY stream_id, actor_id",
            stream_id,
        )
