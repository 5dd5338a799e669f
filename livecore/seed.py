"""The demo seed: a creator with a stream waiting for its publisher and a viewer, so the pages are usable at once.
Idempotent."""

from __future__ import annotations

import datetime as dt
import logging

from livecore.accounts import accounts
from livecore.node import Node
from livecore.streams import streams

log = logging.getLogger("livecore.seed")

DEMO_CREATOR = ("demo_creator", "demo-creator-pass")
DEMO_VIEWER = ("demo_viewer", "demo-viewer-pass")
DEMO_STREAM_TITLE = "Demo live: unboxing the new merch"


async def seed_demo(node: Node) -> None:
    async with node.pool.acquire() as conn:
        # Two nodes may start together on one database: one seeds while the other waits, then finds it done.
        await conn.execute("SELECT pg_advisory_lock(0x73656564)")
        try:
            if not await conn.fetchval("SELECT 1 FROM accounts WHERE username = $1", DEMO_CREATOR[0]):
                await _create_demo(node)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(0x73656564)")


async def _create_demo(node: Node) -> None:
    creator = await accounts.create_account(
        node.pool, username=DEMO_CREATOR[0], password=DEMO_CREATOR[1], birth_date=dt.date(1990, 5, 17),
        region="US", display_name="Demo Creator", interests=["fashion", "music"], roles=["viewer", "creator"],
    )
    await accounts.create_account(
        node.pool, username=DEMO_VIEWER[0], password=DEMO_VIEWER[1], birth_date=dt.date(1995, 2, 3),
        region="GB", display_name="Demo Viewer", interests=["music"], roles=["viewer"],
    )
    publish_by_ms = node.clock.now_ms() + node.settings.stream_unpublished_ms_max
    stream = await streams.create_stream(node.pool, creator.id, DEMO_STREAM_TITLE, publish_by_ms)
    log.info("seeded the demo creator, viewer and stream %d", stream.id)
