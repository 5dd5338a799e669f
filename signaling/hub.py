"""The local fan-out: a node's connections grouped by room, fed by one bus subscription per room.

Events for a room go out in batches: encoded and framed once per subprotocol and written to every connection.
The tick follows the load, not the room's size: an event in a quiet room (no flush for a tick) is flushed at once,
with whatever else arrived in the same turn of the loop; in a busy room events collect until a tick after the last
flush. The tick is `tick_ms_min`, or the last flush's cost times `tick_flush_cost_multiple` when that is longer
(a big room's flush costs more, so it flushes less often and fuller), up to `tick_ms_max`. A busy room's flushes
thus take at most about 1 / (1 + multiple) of the loop, and its viewers get fewer, fuller frames. Chat above the
room's display rate is sampled here.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from livecore.clock import Clock
from livecore.config import Settings
from livecore.node import RoomShopView
from signaling.bus import Bus, BusMessage, RoomPosition, unpack_message
from signaling.connection import Batch, Connection
from signaling.metrics import SignalingMetrics
from signaling.moderation import RoomRules

log = logging.getLogger("livecore.hub")

EventHook = Callable[[int, dict[str, Any]], None]


class RoomHub:
    """One room's local connections and its pending batch."""

    def __init__(self, room_id: int, hub: Hub) -> None:
        self.room_id = room_id
        self.hub = hub
        self.rules: RoomRules | None = None
        self.shop: RoomShopView | None = None  # set when the room opens, if the node has a shop
        self.connections: set[Connection] = set()
        self.attaching = 0
        self.subscribed = False
        self.last_seq = 0
        # What a joiner's snapshot needs, kept current from the bus so a join costs no Redis round trip.
        self.epoch = ""
        self.likes = 0
        self.recent_chat: deque[dict[str, Any]] = deque(maxlen=hub.settings.snapshot_recent_chat_max)
        self.pending: list[dict[str, Any]] = []
        self.held: list[BusMessage] = []
        self.filling = False
        self._flush_handle: asyncio.Handle | None = None
        self._last_flush_s = -math.inf  # loop time of the last flush
        self._flush_cost_s = 0.0  # the CPU time the last flush with events took
        self._chat_tokens = float(hub.settings.chat_display_per_s_max)
        self._chat_refill_ms = hub.clock.now_ms()

    def tick_s(self) -> float:
        """The gap a busy room keeps between flushes: longer when its flushes cost more."""
        s = self.hub.settings
        tick_ms = max(s.tick_ms_min, 1000 * self._flush_cost_s * s.tick_flush_cost_multiple)
        return min(s.tick_ms_max, tick_ms) / 1000

    def receive(self, message: BusMessage) -> None:
        """A bus event, in seq order; a gap is filled from the replay stream before anything after it."""
        if message.seq <= self.last_seq:
            return  # a duplicate (e.g. a resubscription overlap)
        if self.filling:
            self.held.append(message)
            return
        # Before the room's position is loaded there is nothing to measure a gap from; after, a room whose log
        # was empty (seq 0) has a gap too when its first events are lost.
        if self.subscribed and message.seq > self.last_seq + 1:
            self.hub.metrics.bus_gaps.inc()
            self.filling = True
            self.held.append(message)
            asyncio.get_running_loop().create_task(self._fill_gap(self.last_seq, message.seq))
            return
        self._accept(message)

    async def _fill_gap(self, after_seq: int, before_seq: int) -> None:
        try:
            missing = await self.hub.bus.replay(self.room_id, after_seq, before_seq - 1)
        except Exception:
            log.exception("could not fill bus gap %d..%d in room %d", after_seq, before_seq, self.room_id)
            missing = []
        self.filling = False
        held, self.held = self.held, []
        for message in sorted([*missing, *held], key=lambda m: m.seq):
            if message.seq > self.last_seq:
                self._accept(message)

    def _accept(self, message: BusMessage) -> None:
        self.last_seq = message.seq
        event = message.event
        try:
            self.hub.on_room_event(self.room_id, event)
        except Exception:
            log.exception("room %d: side effect of %s failed; delivering it anyway", self.room_id, event)
        if event["type"] == "chat":
            if not self._take_chat_token():
                self.hub.metrics.lossy_dropped.labels(reason="display_rate").inc()
                return
            self.recent_chat.append(event)
        elif event["type"] == "like":
            self.likes = event["total"]
        elif event["type"] == "moderation" and event.get("action") == "delete":
            self.recent_chat = deque((c for c in self.recent_chat if c["id"] != event["id"]),
                                     maxlen=self.recent_chat.maxlen)
        self.add(event)

    def load_position(self, position: RoomPosition, recent: list[BusMessage]) -> None:
        """Start from the room's log as Redis holds it when this node subscribes."""
        self.last_seq, self.epoch, self.likes = position.seq, position.epoch, position.likes
        self.recent_chat.extend(visible_chat(recent, position.seq)[-self.recent_chat.maxlen:])

    def add(self, event: dict[str, Any]) -> None:
        self.pending.append(event)
        if self._flush_handle is None:
            loop = asyncio.get_running_loop()
            due_s = self._last_flush_s + self.tick_s()
            if due_s <= loop.time():  # a quiet room: at once, with the rest of this turn of the loop
                self._flush_handle = loop.call_soon(self.flush)
            else:
                self._flush_handle = loop.call_at(due_s, self.flush)

    def flush(self) -> None:
        self._flush_handle = None
        started = time.thread_time()  # CPU time: a flush preempted by other processes did not cost more
        batch = Batch(self.pending)
        self.pending = []
        written = 0
        any_slow = False
        for conn in self.connections:
            if conn.backlog:
                conn.drain()
            if batch.events:
                written += conn.deliver(batch)
            any_slow = any_slow or bool(conn.backlog)
        if batch.events:
            self._flush_cost_s = time.thread_time() - started
        self._last_flush_s = asyncio.get_running_loop().time()
        self.hub.metrics.events_out.inc(written)
        self.hub.metrics.frames_built.inc(batch.frames_built)
        if any_slow and self._flush_handle is None:
            # Keep ticking while anyone is behind, so their backlog drains even in a quiet room.
            self._flush_handle = asyncio.get_running_loop().call_later(self.tick_s(), self.flush)

    def _take_chat_token(self) -> bool:
        rate = self.hub.settings.chat_display_per_s_max
        now_ms = self.hub.clock.now_ms()
        self._chat_tokens = min(float(rate), self._chat_tokens + (now_ms - self._chat_refill_ms) * rate / 1000)
        self._chat_refill_ms = now_ms
        if self._chat_tokens < 1:
            return False
        self._chat_tokens -= 1
        return True


class Hub:
    """All rooms with local connections on this node."""

    def __init__(
        self, bus: Bus, settings: Settings, clock: Clock, metrics: SignalingMetrics,
        on_room_event: EventHook, on_room_opened: Callable[[int], Awaitable[RoomRules]],
        on_room_subscribed: Callable[[RoomHub], Awaitable[None]] | None = None,
    ) -> None:
        self.bus = bus
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.on_room_event = on_room_event
        self._on_room_opened = on_room_opened
        self._on_room_subscribed = on_room_subscribed
        self.rooms: dict[int, RoomHub] = {}
        self._subscribing: dict[int, asyncio.Future[None]] = {}
        bus.on_message = self._on_bus_message

    def _on_bus_message(self, room_id: int, raw: bytes) -> None:
        room = self.rooms.get(room_id)
        if room is not None:
            room.receive(unpack_message(raw))

    async def attach(self, room_id: int, conn: Connection) -> RoomHub:
        """Add a joining connection; returns once the node is subscribed, so no later event is missed."""
        room = self.rooms.get(room_id)
        if room is None:
            room = self.rooms[room_id] = RoomHub(room_id, self)
        room.attaching += 1
        try:
            if not room.subscribed:
                await self._subscribe(room)
        finally:
            room.attaching -= 1
        room.connections.add(conn)
        self.metrics.connections.inc()
        return room

    async def _subscribe(self, room: RoomHub) -> None:
        waiter = self._subscribing.get(room.room_id)
        if waiter is None:
            waiter = self._subscribing[room.room_id] = asyncio.get_running_loop().create_future()
            try:
                room.rules = await self._on_room_opened(room.room_id)
                await self.bus.subscribe(room.room_id)
                if self._on_room_subscribed is not None:
                    await self._on_room_subscribed(room)
                position = await self.bus.position(room.room_id)
                recent = await self.bus.recent(room.room_id, self.settings.snapshot_recent_chat_max * 2)
                room.load_position(position, recent)
                room.subscribed = True
                self.metrics.rooms.inc()
                waiter.set_result(None)
            except BaseException as exc:
                waiter.set_exception(exc)
                raise
            finally:
                del self._subscribing[room.room_id]
        else:
            await asyncio.shield(waiter)

    async def detach(self, room_id: int, conn: Connection) -> None:
        room = self.rooms.get(room_id)
        if room is None or conn not in room.connections:
            return
        room.connections.discard(conn)
        self.metrics.connections.dec()
        if not room.connections and not room.attaching:
            del self.rooms[room_id]
            if room.subscribed:
                self.metrics.rooms.dec()
                await self.bus.unsubscribe(room_id)

    def push_local(self, room_id: int, event: dict[str, Any]) -> None:
        """A node-local event (no seq) for everyone in the room on this node."""
        room = self.rooms.get(room_id)
        if room is not None:
            room.add(event)

    def viewers_by_room(self) -> dict[int, int]:
        return {room_id: len(room.connections) for room_id, room in self.rooms.items()}


def visible_chat(messages: list[BusMessage], at_seq: int) -> list[dict[str, Any]]:
    """The chat among `messages` up to `at_seq` that no moderator deleted, oldest first."""
    deleted = {m.event["id"] for m in messages if m.event.get("action") == "delete"}
    return [m.event for m in messages if m.event["type"] == "chat" and m.seq <= at_seq and m.seq not in deleted]
