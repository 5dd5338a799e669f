"""What one running node holds: settings, the clock, the database pool, Redis, token signing and metrics.

Every context's handlers reach these through `request.app[NODE]`; nothing is a module-level global, so tests
run several nodes in one process.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import redis.asyncio as redis
from aiohttp import web
from prometheus_client import CollectorRegistry

from livecore.accounts.accounts import AccountCache
from livecore.accounts.tokens import Tokens
from livecore.clock import Clock
from livecore.config import Settings


class RoomEvents(Protocol):
    """What other contexts may ask of the room event plane (signaling/), without importing it."""

    async def publish(self, room_id: int, event: dict[str, Any]) -> int: ...

    async def publish_many(self, events: list[tuple[int, dict[str, Any]]]) -> None: ...

    async def publish_once(self, events: list[tuple[int, str, dict[str, Any]]]) -> list[int | Exception]:
        """Publish (room_id, event_id, event) in order, each event id at most once per room; per event its seq, 0 if
        it went out before, or the error that kept it out."""
        ...

    async def viewer_counts(self, room_ids: list[int]) -> dict[int, int]: ...

    async def moderators(self, room_id: int) -> frozenset[int]:
        """The users appointed moderators of a room (besides its creator and platform moderators)."""
        ...


class GiftSender(Protocol):
    """What the room plane may ask of money (commerce/): send a gift, without importing it."""

    async def send_gift(
        self, sender_id: int, stream_id: int, gift_id: str, count: int, idempotency_key: str
    ) -> dict[str, Any]: ...


class RoomShopView(Protocol):
    """One room's shop as its join snapshot shows it, kept up to date from the room's events."""

    def apply(self, event: dict[str, Any]) -> None: ...

    def snapshot(self) -> dict[str, Any]: ...


class RoomShop(Protocol):
    """What the room plane may ask of money about a room's shop (commerce/), without importing it: the view its
    join snapshots show (the pinned product, the current auction) and bids sent over the room's socket."""

    def room_view(self) -> RoomShopView: ...

    async def load_room_view(self, room_id: int, view: RoomShopView) -> None: ...

    async def place_bid(
        self, bidder_id: int, room_id: int, auction_id: int, amount_cents: int, max_cents: int | None,
        idempotency_key: str,
    ) -> dict[str, Any]: ...

    async def close_ended_rooms(self) -> None:
        """Close the open auctions of rooms whose stream has ended (the leader wins, as at the end)."""
        ...


class MediaControl(Protocol):
    """What other contexts may ask of the media plane (livecore/media), without importing it."""

    async def stop_publishing(self, stream_id: int, reason: str) -> None: ...


@dataclass
class Node:
    settings: Settings
    clock: Clock
    pool: asyncpg.Pool
    redis: redis.Redis
    tokens: Tokens
    registry: CollectorRegistry
    accounts: AccountCache
    rooms: RoomEvents | None = field(default=None)
    gifts: GiftSender | None = field(default=None)
    shop: RoomShop | None = field(default=None)
    media: MediaControl | None = field(default=None)

    def today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.clock.now_s(), tz=dt.UTC).date()


NODE = web.AppKey("node", Node)
