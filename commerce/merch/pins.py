"""The product pinned in a live room: one per room, changed by the room's creator, announced to the room as a
must-deliver `product_pinned` event and part of every join snapshot.

The event is written to the room event outbox in the transaction that changes the pin, so a pin committed while
the bus is away is still announced once it is back (and a pin is never refused after it was made)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg

from commerce import event_outbox
from commerce.merch import products
from livecore.accounts import Account
from livecore.http import Problem
from livecore.streams import get_stream

if TYPE_CHECKING:
    from commerce.merch.service import Merch


async def set_pin(merch: Merch, account: Account, stream_id: int, product_id: int | None) -> dict[str, Any]:
    """Pin one of your products in your room (None unpins); the room sees `product_pinned`."""
    stream = await get_stream(merch.pool, stream_id)
    if stream is None:
        raise Problem(404, "stream-not-found", f"there is no stream {stream_id}")
    if stream.creator_id != account.id:
        raise Problem(403, "not-your-stream", "only the stream's creator can pin products in its room")
    product = None
    if product_id is not None:
        product = await products.get_product(merch.pool, product_id)
        if product["creator"]["id"] != account.id:
            raise Problem(403, "not-your-product", "you can only pin your own products")
    now_ms = merch.clock.now_ms()
    async with merch.pool.acquire() as conn, conn.transaction():
        version = await conn.fetchval(
            "INSERT INTO stream_pins (stream_id, product_id, version, changed_ms) VALUES ($1, $2, 1, $3)"
            " ON CONFLICT (stream_id) DO UPDATE SET product_id = EXCLUDED.product_id,"
            " version = stream_pins.version + 1, changed_ms = EXCLUDED.changed_ms RETURNING version",
            stream_id, product_id, now_ms,
        )
        await event_outbox.write(conn, [(stream_id, pin_event(product, version))], now_ms)
    return {"stream_id": stream_id, "product": product, "pin_version": version}


def pin_event(product: dict[str, Any] | None, version: int) -> dict[str, Any]:
    return {"type": "product_pinned", "product": product, "pin_version": version}


async def pinned(pool: asyncpg.Pool, stream_id: int) -> dict[str, Any] | None:
    """The room's latest `product_pinned` event as the database has it; None when nothing was ever pinned."""
    row = await pool.fetchrow("SELECT product_id, version FROM stream_pins WHERE stream_id = $1", stream_id)
    if row is None:
        return None
    product = await products.get_product(pool, row["product_id"]) if row["product_id"] is not None else None
    return pin_event(product, row["version"])
