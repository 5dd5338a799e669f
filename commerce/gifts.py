"""Sending a gift: one journal transaction (viewer coins -> creator held diamonds + platform share), committed in a
batch with others (gift_batches.py), then a room event with its combo count; and the per-stream top-gifter board
kept beside the journal (derived, rebuildable)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import asyncpg

from commerce import ledger, rules
from commerce.gift_batches import Committed, GiftOrder, Posted
from livecore.accounts import Account
from livecore.http import Problem
from livecore.tasks import stop_tasks

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


class GiftAnnouncer:
    """The room events of committed gifts, in commit order and off the commit path: a batch's combos are counted
    in one Redis round trip and its events published in another. The money is committed before any of this; if
    Redis is down the events are logged as lost and counted, never retried into a later, misleading combo."""

    def __init__(self, commerce: Commerce, queue_batches_max: int) -> None:
        self._commerce = commerce
        self._queue: asyncio.Queue[tuple[int, Committed]] = asyncio.Queue(queue_batches_max)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        await stop_tasks(self._task)

    def offer(self, now_ms: int, committed: Committed) -> None:
        if not committed or self._commerce.node.rooms is None:
            return
        try:
            self._queue.put_nowait((now_ms, committed))
        except asyncio.QueueFull:
            self._commerce.metrics.gift_events_lost.inc(len(committed))
            log.error("%d committed gifts get no room event: the announcement queue is full", len(committed))

    async def _run(self) -> None:
        while True:
            due = [await self._queue.get()]  # and every batch committed meanwhile: one announcement for them all
            due.extend(self._queue.get_nowait() for _ in range(self._queue.qsize()))
            gifts = [(now_ms, order, posted) for now_ms, committed in due for order, posted in committed]
            try:
                await self._announce(gifts)
            except asyncio.CancelledError:
                raise
            except Exception:
                self._commerce.metrics.gift_events_lost.inc(len(gifts))
                log.exception("%d gifts are committed but their room events could not be published", len(gifts))

    async def _announce(self, gifts: list[tuple[int, GiftOrder, Posted]]) -> None:
        rooms = self._commerce.node.rooms
        assert rooms is not None
        hits = [(now_ms, o.stream_id, {"id": o.sender_id, "name": o.sender_name}, asdict(o.gift), o.count)
                for now_ms, o, _ in gifts]
        combos = await self._commerce.combos.hit_many(hits)
        events: list[tuple[int, dict[str, Any]]] = []
        for (_, stream_id, sender, gift, count), (_, _, posted), (combo, ended) in zip(hits, gifts, combos,
                                                                                     strict=True):
            if ended is not None:
                events.append((ended.stream_id, ended.event))
            events.append((stream_id, {"type": "gift", "id": posted.transaction_id, "user": sender, "gift": gift,
                                       "count": count, "combo": combo}))
        await rooms.publish_many(events)


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
