"""Sending a gift: one journal transaction (viewer coins -> creator held diamonds + platform share), committed in a
batch with others (gift_batches.py) together with its room event in the outbox, published with its combo count by
the relay (event_outbox.py); and the per-stream top-gifter board kept beside the journal (derived, rebuildable)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import asyncpg

from commerce import event_outbox, ledger, rules
from commerce.event_outbox import OutboxEvent, Outgoing
from commerce.gift_batches import GiftOrder
from livecore.accounts import Account
from livecore.http import Problem

if TYPE_CHECKING:
    from commerce.service import Commerce

log = logging.getLogger("livecore.commerce.gifts")

_REFUSED = {  # gift_post_batch outcomes that refuse a gift: (status, detail); the outcome is the problem's slug
    "stream-not-live": (409, "gifts can only be sent to a live stream"),
    "insufficient-funds": (402, "the wallet does not hold enough for this"),
    "wallet-frozen": (403, "this wallet is frozen after a refund or dispute; contact support"),
}


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
    creator_id = await commerce.creator_of(stream_id)
    if creator_id == sender.id:
        raise Problem(403, "self-gift", "you cannot send gifts to your own stream")
    coins = gift.coins * count
    creator_diamonds, platform_diamonds = commerce.catalogue.rate.split(coins)
    order = GiftOrder(
        external_id=f"gift:{sender.id}:{idempotency_key}", sender_id=sender.id, sender_name=sender.display_name,
        stream_id=stream_id, creator_id=creator_id, gift=gift, count=count, coins=coins,
        creator_diamonds=creator_diamonds, platform_diamonds=platform_diamonds,
        details={"gift_id": gift.id, "gift_version": commerce.catalogue.gift_version, "count": count,
                 "coins": coins, "rate_version": commerce.catalogue.rate.version, "creator_id": creator_id},
    )
    posted = await commerce.gift_batches.post(order)
    if posted.outcome == "duplicate":
        previous = await ledger.find_transaction(node.pool, order.external_id)
        assert previous is not None, "gift_post_batch reported a duplicate that is not in the journal"
        return await _replayed(commerce, sender.id, previous)
    if posted.outcome == "daily-spend-limit":
        raise rules.daily_spend_refused(settings.gift_coins_per_day_max, coins)
    if posted.outcome != "ok":
        status, detail = _REFUSED[posted.outcome]
        raise Problem(status, posted.outcome, detail)
    commerce.metrics.gifts.inc()
    return {"transaction_id": posted.transaction_id, "stream_id": stream_id, "gift_id": gift.id, "count": count,
            "coins": coins, "coins_balance": posted.coins_balance, "replayed": False}


async def _replayed(commerce: Commerce, sender_id: int, previous: asyncpg.Record) -> dict[str, Any]:
    details = ledger.details_of(previous)
    balances = await ledger.balances(commerce.node.pool, sender_id)
    return {"transaction_id": previous["id"], "stream_id": previous["stream_id"], "gift_id": details["gift_id"],
            "count": details["count"], "coins": details["coins"],
            "coins_balance": balances.get("coins", {}).get("balance", 0), "replayed": True}


async def complete(commerce: Commerce, rows: list[OutboxEvent]) -> list[Outgoing]:
    """The outbox's events as they are published, gifts with their combo count (and the end of a lapsed combo
    a gift replaced, just before it): counted in one Redis round trip, by each gift's commit time. A gift's hit is
    remembered by its event id, so a relay round tried again counts nothing twice."""
    gifts = [row for row in rows if row.event["type"] == "gift"]
    combos = await commerce.combos.hit_many([
        (row.created_ms, row.room_id, row.event["user"], row.event["gift"], row.event["count"], str(row.id))
        for row in gifts])
    counted = {row.id: combo for row, combo in zip(gifts, combos, strict=True)}
    made: list[Outgoing] = []
    for (room_id, event_id, event), row in zip(event_outbox.as_published(rows), rows, strict=True):
        if row.id in counted:
            combo, ended = counted[row.id]
            if ended is not None:
                made.append((ended.stream_id, f"{event_id}:end", {"ts": row.created_ms, **ended.event}))
            event["combo"] = combo
        made.append((room_id, event_id, event))
    return made


async def end_due_combos(commerce: Commerce) -> int:
    """Announce `gift_end` for every combo whose window has passed by the node's clock; how many ended."""
    ended = await commerce.combos.due(commerce.node.clock.now_ms())
    if commerce.node.rooms is not None and ended:
        await commerce.node.rooms.publish_many([(end.stream_id, end.event) for end in ended])
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
