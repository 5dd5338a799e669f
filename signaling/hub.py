"""The local fan-out: a node's connections grouped by room, fed by one bus subscription per room.

Events for a room go out in batches: encoded and framed once per subprotocol and written to every connection.
When a batch goes out is signaling/tick.py's rule: the tick follows the load, not the room's size. A quiet room
flushes each event at once; a room batches only when its event rate times its connections (the writes per second
flushing each event alone would take) is above `batch_writes_per_s_min` and its node process's rooms together are
above `batch_node_writes_per_s_min`, and then waits long enough between flushes for frames of about
`batch_frame_events` events, or for its flushes to take a bounded share of the loop, up to `tick_ms_max`; a
must-deliver event does not wait for that tick (a few times a second at most). Chat above
the room's display rate is sampled here.

A room's log in Redis can be lost (Redis restarted empty) or cut short (an append-only file missing its last
writes). A node learns of it from a bus message in another epoch, from checking the room's position when its
subscription comes back, or from a join that reads the position; it then checks the room (`Hub.check`). A room in
a new epoch restarts at its seq 0 and takes the new epoch's events from the replay stream; a room whose seq went
backwards goes on in a new epoch from where the log now is. Either way every viewer gets one `reset` and a fresh
snapshot, and nothing of the old epoch is handed out after that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from livecore.clock import Clock
from livecore.config import Settings
from livecore.node import RoomShopView
from livecore.tasks import stop_tasks
from signaling import protocol
from signaling.bus import Bus, BusMessage, RoomPosition, unpack_message
from signaling.connection import Batch, Connection
from signaling.metrics import SignalingMetrics
from signaling.moderation import RoomRules
from signaling.tick import NodeLoad, RoomTick, TickRule

log = logging.getLogger("livecore.hub")

CHECK_RETRY_S = 0.5  # the least time between two failed checks of a room against the bus

EventHook = Callable[[int, dict[str, Any]], None]
RoomRestartHook = Callable[["RoomHub"], Awaitable[None]]


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
        self.checking: asyncio.Task[None] | None = None  # a check of the room's position against Redis
        self.generation = 0  # counts restarts in a new epoch, so a join in flight across one starts over
        self._flush_handle: asyncio.Handle | None = None
        self.flush_due_s: float | None = None  # the loop time a flush waits for; None: none, or in this turn
        self.tick = RoomTick(hub.tick_rule)
        self._chat_tokens = float(hub.settings.chat_display_per_s_max)
        self._chat_refill_ms = hub.clock.now_ms()

    def receive(self, message: BusMessage) -> None:
        """A bus event, in seq order; a gap is filled from the replay stream before anything after it."""
        if self.checking is not None or self.filling:
            self.held.append(message)
            return
        if self.subscribed and message.epoch != self.epoch:
            self.held.append(message)
            self.hub.check(self)
            return
        if message.seq <= self.last_seq:
            return  # a duplicate (e.g. a resubscription overlap)
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
        generation = self.generation
        try:
            missing = await self.hub.bus.replay(self.room_id, after_seq, before_seq - 1)
        except Exception:
            log.exception("could not fill bus gap %d..%d in room %d", after_seq, before_seq, self.room_id)
            missing = []
        self.filling = False
        self.release(missing if generation == self.generation else [])  # not the old epoch's, after a restart

    def release(self, missing: list[BusMessage]) -> None:
        """Accept `missing` (read from the replay stream) and the messages held meanwhile, in seq order."""
        held, self.held = self.held, []
        for message in sorted(missing, key=lambda m: m.seq):
            if message.seq > self.last_seq and message.epoch == self.epoch:
                self._accept(message)
        for message in held:
            self.receive(message)  # in arrival order; one from yet another epoch starts another check

    def restart(self, epoch: str, seq: int, recent_chat: list[dict[str, Any]]) -> None:
        """Go on from `seq` of `epoch` (the log the old state came from is gone or cut short), after sending on
        what is pending of the old one. The like total went with the log."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self.flush()
        self.generation += 1
        self.epoch, self.last_seq, self.likes = epoch, seq, 0
        self.recent_chat.clear()
        self.recent_chat.extend(recent_chat)  # a bounded deque: the newest are kept
        self.held = [m for m in self.held if m.epoch == epoch]

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
        loop = asyncio.get_running_loop()
        now_s = loop.time()
        self.tick.event(now_s)
        if self._flush_handle is not None and self.flush_due_s is None:
            return  # a flush runs later in this turn of the loop
        # A gift, a bid or a moderation action does not wait for a busy room's tick (see signaling/tick.py).
        # (Whether a flush waits for a tick is kept in flush_due_s: uvloop's timer handles are no asyncio.TimerHandle.)
        hurry = protocol.is_must_deliver(event) and self.tick.may_hurry(now_s)
        if self._flush_handle is not None:  # waiting for the tick
            if not hurry:
                return
            self._flush_handle.cancel()
        else:
            due_s = self.tick.due_s(now_s, len(self.connections), self.hub.writes_per_s(now_s))
            if due_s > now_s and not hurry:
                self._schedule_flush(due_s)
                return
            hurry = due_s > now_s
        if hurry:
            self.tick.hurried(now_s)
        self._schedule_flush(None)  # with the rest of this turn of the loop

    def _schedule_flush(self, due_s: float | None) -> None:
        """Flush at the loop time `due_s`, or with the rest of this turn of the loop (None)."""
        loop = asyncio.get_running_loop()
        self.flush_due_s = due_s
        self._flush_handle = loop.call_soon(self.flush) if due_s is None else loop.call_at(due_s, self.flush)

    def flush(self) -> None:
        self._flush_handle = self.flush_due_s = None
        started = time.thread_time()  # CPU time: a flush preempted by other processes did not cost more
        started_wall = time.perf_counter()
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
        cost_s = None
        if batch.events:
            cost_s = time.thread_time() - started
            self.hub.metrics.flush_cpu.observe(cost_s)
            self.hub.metrics.flush_wall.observe(time.perf_counter() - started_wall)
            self._observe_must_deliver_out(batch)
        loop = asyncio.get_running_loop()
        self.tick.flushed(loop.time(), cost_s)
        self.hub.metrics.events_out.inc(written)
        self.hub.metrics.frames_built.inc(batch.frames_built)
        if any_slow and self._flush_handle is None:
            # Keep ticking while anyone is behind, so their backlog drains even in a quiet room.
            now_s = loop.time()
            self._schedule_flush(now_s + self.tick.tick_s(now_s, len(self.connections), self.hub.writes_per_s(now_s)))

    def _observe_must_deliver_out(self, batch: Batch) -> None:
        now_ms = self.hub.clock.now_ms()
        for event in batch.events:
            if "ts" in event and protocol.is_must_deliver(event):
                self.hub.metrics.must_deliver_out.observe(max(0, now_ms - event["ts"]) / 1000)

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
        on_room_restarted: RoomRestartHook | None = None,
    ) -> None:
        self.bus = bus
        self.settings = settings
        self.tick_rule = TickRule.of(settings)
        self.load = NodeLoad()
        self.clock = clock
        self.metrics = metrics
        self.on_room_event = on_room_event
        self._on_room_opened = on_room_opened
        self._on_room_subscribed = on_room_subscribed
        self._on_room_restarted = on_room_restarted
        self.rooms: dict[int, RoomHub] = {}
        self._subscribing: dict[int, asyncio.Future[None]] = {}
        self._checks: set[asyncio.Task[None]] = set()
        bus.on_message = self._on_bus_message
        bus.on_resubscribed = self._on_resubscribed

    def writes_per_s(self, now_s: float) -> float:
        """This node process's load (signaling/tick.py): what its rooms would write flushing every event alone."""
        return self.load.writes_per_s(now_s, ((room.tick, len(room.connections)) for room in self.rooms.values()))

    def _on_resubscribed(self, room_id: int) -> None:
        room = self.rooms.get(room_id)
        if room is not None and room.subscribed:
            self.check(room)

    def check(self, room: RoomHub) -> asyncio.Task[None]:
        """Compare the room with its log in Redis (once at a time): restart it in the log's epoch if that changed
        or its seq went backwards, and take in what the log has beyond this node's seq. Messages wait meanwhile."""
        if room.checking is None:
            room.checking = asyncio.get_running_loop().create_task(self._check(room), name=f"check-{room.room_id}")
            self._checks.add(room.checking)  # also after its room closed, until it ends
            room.checking.add_done_callback(self._checks.discard)
        return room.checking

    async def stop(self) -> None:
        """Stop the checks still running (a node stopping while Redis is away would leave them waiting)."""
        await stop_tasks(*self._checks)

    async def settled(self, room: RoomHub) -> None:
        """Return once no check of the room is running (its outcome, even a failure, is the check's business)."""
        while room.checking is not None:
            await asyncio.wait([room.checking])

    async def _check(self, room: RoomHub) -> None:
        missing: list[BusMessage] = []
        try:
            position = await self.bus.position(room.room_id)
            if position.epoch == room.epoch and position.seq < room.last_seq:
                log.warning("room %d: the bus log went back from seq %d to %d; going on in a new epoch",
                            room.room_id, room.last_seq, position.seq)
                epoch, seq = await self.bus.renew_epoch(room.room_id, room.epoch)
                recent = await self.bus.recent(room.room_id, self.settings.snapshot_recent_chat_max * 2)
                await self._restart(room, epoch, seq, visible_chat(recent, seq))
            elif position.epoch != room.epoch:
                log.warning("room %d: the bus lost its log (epoch %s, now %s at seq %d); restarting its viewers",
                            room.room_id, room.epoch, position.epoch, position.seq)
                # The new epoch began at seq 0 (Redis restarted empty) or where another node renewed it (a log cut
                # short): what the log holds of older epochs comes before it, and its own events after.
                logged = await self.bus.replay(room.room_id, 0, position.seq)
                missing = [m for m in logged if m.epoch == position.epoch]
                base = missing[0].seq - 1 if missing else position.seq
                before = [m for m in logged if m.seq <= base]
                await self._restart(room, position.epoch, base, visible_chat(before, base))
            else:
                missing = await self.bus.replay(room.room_id, room.last_seq, position.seq)
                if missing:
                    self.metrics.bus_gaps.inc()  # published while this node's subscription was down
            # Held messages of another epoch are stragglers of a log that is gone: one of a still newer epoch would
            # come again from the replay stream, when the next of its messages or a resubscription checks again.
            room.held = [m for m in room.held if m.epoch == room.epoch]
        except Exception as exc:
            # Redis is unreachable again: held messages, the next resubscription or a join check once more.
            log.warning("could not check room %d against the bus: %s", room.room_id, exc)
            await asyncio.sleep(CHECK_RETRY_S)
        finally:
            room.checking = None
            room.release(missing)

    async def _restart(self, room: RoomHub, epoch: str, seq: int, recent_chat: list[dict[str, Any]]) -> None:
        self.metrics.room_restarts.inc()
        room.restart(epoch, seq, recent_chat)
        if self._on_room_restarted is not None:
            await self._on_room_restarted(room)

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
                position = await self.bus.position(room.room_id)
                recent = await self.bus.recent(room.room_id, self.settings.snapshot_recent_chat_max * 2)
                # After the position: what is announced is committed first, so the state read now holds every
                # event up to the position's seq, and every later one comes through the subscription.
                if self._on_room_subscribed is not None:
                    await self._on_room_subscribed(room)
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
