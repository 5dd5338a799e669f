"""The demo seed: the accounts the demo pages and the live demo log in as. Idempotent: a missing one is created.

No stream is seeded: a stream is live only while someone publishes to it, so the live demo (livecore/demo) goes
live itself, as its creator would.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from livecore.accounts import accounts
from livecore.node import Node

log = logging.getLogger("livecore.seed")


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    display_name: str
    birth_date: dt.date
    region: str
    roles: list[str] = field(default_factory=lambda: ["viewer"])
    interests: list[str] = field(default_factory=lambda: ["music"])


DEMO_CREATOR = DemoAccount("demo_creator", "demo-creator-pass", "Demo Creator", dt.date(1990, 5, 17), "US",
                           roles=["viewer", "creator"], interests=["fashion", "music"])
DEMO_VIEWER = DemoAccount("demo_viewer", "demo-viewer-pass", "Demo Viewer", dt.date(1995, 2, 3), "GB")
# The live demo's viewers, who chat, like and send gifts on their own; all adults, so they may buy coins.
DEMO_AUDIENCE = (
    DemoAccount("demo_mia", "demo-audience-pass", "Mia", dt.date(1998, 8, 21), "US", interests=["fashion"]),
    DemoAccount("demo_leo", "demo-audience-pass", "Leo", dt.date(1992, 11, 2), "BR", interests=["music"]),
    DemoAccount("demo_aiko", "demo-audience-pass", "Aiko", dt.date(2000, 3, 9), "JP", interests=["gaming"]),
    DemoAccount("demo_sam", "demo-audience-pass", "Sam", dt.date(1987, 6, 30), "DE", interests=["music", "art"]),
)
DEMO_ACCOUNTS = (DEMO_CREATOR, DEMO_VIEWER, *DEMO_AUDIENCE)


async def seed_demo(node: Node) -> None:
    async with node.pool.acquire() as conn:
        # Two nodes may start together on one database: one seeds while the other waits, then finds it done.
        await conn.execute("SELECT pg_advisory_lock(0x73656564)")
        try:
            existing = {
                row["username"] for row in await conn.fetch(
                    "SELECT username FROM accounts WHERE username = ANY($1::text[])",
                    [a.username for a in DEMO_ACCOUNTS],
                )
            }
            missing = [a for a in DEMO_ACCOUNTS if a.username not in existing]
            for account in missing:
                await accounts.create_account(
                    node.pool, username=account.username, password=account.password, birth_date=account.birth_date,
                    region=account.region, display_name=account.display_name, interests=account.interests,
                    roles=account.roles,
                )
        finally:
            await conn.execute("SELECT pg_advisory_unlock(0x73656564)")
    if missing:
        log.info("seeded the demo accounts %s", ", ".join(a.username for a in missing))
        creator = await demo_account_id(node, DEMO_CREATOR.username)
        for account in missing:  # the demo viewers follow the demo creator: their Following feed has someone
            if account is not DEMO_CREATOR:
                await accounts.follow(node.pool, await demo_account_id(node, account.username), creator)


async def demo_account_id(node: Node, username: str) -> int:
    account_id = await node.pool.fetchval("SELECT id FROM accounts WHERE username = $1", username)
    assert account_id is not None, f"the demo account {username} is not seeded"
    return int(account_id)
