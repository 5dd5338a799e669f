"""The room event plane of one node: bus, hub, presence, rules and the background loops, put together.

Other contexts see it only as `livecore.node.RoomEvents` (publish an event, read viewer counts).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import redis.asyncio as redis

from livecore import outage
from livecore.node import Node
from livecore.streams import get_stream
from livecore.tasks import stop_tasks
from signaling import moderation, protocol
from signaling.bus import Bus
from signaling.connection import Viewer
from signaling.hub import Hub, RoomHub
from signaling.metrics import SignalingMetrics
from signaling.moderation import RoomRules
from signaling.outbox import Outbox
from signaling.presence import Presence, control_channel
from signaling.ratelimit import TokenBuckets

log = logging.getLogger("livecore.plane")

JOIN_ATTEMPTS_MAX = 3  # a join that finds its room restarted (the bus lost its log) starts over at most so often
SHOP_EVENTS = frozenset({"auction", "product_pinned"})  # what the room's shop view is folded from

_SLOW_MODE = """
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local now = tonumber(ARGV[1])
local wait = last + tonumber(ARGV[2]) - now
if last > 0 and wait > 0 then return wait end
redis.call('SET', KEYS[1], now, 'PX', ARGV[2])
return 0
"""


class BusUnavailable(redis.ConnectionError):
    """The bus (Redis) cannot be reached or kept changing under a request; the client should try again."""


class Plane:
    def __init__(self, node: Node) -> None:
        s = node.settings
        self.node = node
        self.settings = s
        self.clock = node.clock
        self.metrics = SignalingMetrics(node.registry)
        self.bus = Bus(node.redis, s.replay_events_max, s.dedup_event_ids_max)
        self.outbox = Outbox(self.bus, s.publish_queue_events_max)
        self.presence = Presence(node.redis, s.node_id, s.presence_ttl_ms)
        self.hub = Hub(self.bus, s, node.clock, self.metrics, self._on_room_event, self._open_room,
                       self._load_room_shop, self._restart_viewers)
        self.chat_limits = TokenBuckets(s.chat_per_user_per_10s_max, s.chat_per_user_per_10s_max / 10)
        self.like_limits = TokenBuckets(s.like_taps_per_user_per_s_max, s.like_taps_per_user_per_s_max)
        self.likes_pending: Counter[int] = Counter()
        self._slow_mode = node.redis.register_script(_SLOW_MODE)
        self._tasks: list[asyncio.Task[None]] = []
        self._last_viewers: dict[int, int] = {}

    async def start(self) -> None:
        await self.presence.reset()
        await self.bus.start(control_channel(self.settings.node_id))  # first: a node counts once it listens there
        await self.presence.report(self.clock.now_ms(), Counter())
        self.outbox.start()
        self._tasks = [
            asyncio.create_task(self._every(self.settings.presence_refresh_ms, self.refresh_presence)),
            asyncio.create_task(self._every(self.settings.like_flush_ms, self.flush_likes)),
        ]

    async def stop(self) -> None:
        await stop_tasks(*self._tasks)
        self.close_connections("node shutting down")
        try:
            await self.flush_likes()
            await self.outbox.stop()
            await self.presence.leave()
        except Exception as exc:  # a node stops during a Redis outage too; its presence expires
            if outage.unreachable_part(exc) != "bus":
                raise
            log.warning("stopping without the bus: %s", exc)
        await self.bus.stop()
        await self.hub.stop()

    def close_connections(self, reason: str) -> None:
        """Close every room WebSocket on this node with 1001 (going away); clients reconnect and resume."""
        for room in list(self.hub.rooms.values()):
            for conn in list(room.connections):
                conn.close(protocol.CLOSE_GOING_AWAY, reason)

    # RoomEvents, for the other contexts

    async def publish(self, room_id: int, event: dict[str, Any], like_delta: int = 0) -> int:
        event.setdefault("ts", self.clock.now_ms())
        _, seq = await self.bus.publish(room_id, event, like_delta)
        self.metrics.events_in.labels(type=event["type"]).inc()
        return seq

    async def publish_many(self, events: list[tuple[int, dict[str, Any]]]) -> None:
        """Publish (room_id, event) pairs in order in one round trip (must-deliver, like `publish`)."""
        now_ms = self.clock.now_ms()
        for _, event in events:
            event.setdefault("ts", now_ms)
            self.metrics.events_in.labels(type=event["type"]).inc()
        await self.bus.publish_many(events)

    async def publish_once(self, events: list[tuple[int, str, dict[str, Any]]]) -> list[int | Exception]:
        """Publish (room_id, event_id, event) triples in order in one round trip, each event id at most once per
        room (a retry of a publish whose answer was lost is no duplicate). Per event: its seq, 0 if the bus had it
        already, or the error that kept it out (on a cluster, only rooms on a shard that is down)."""
        now_ms = self.clock.now_ms()
        for _, _, event in events:
            event.setdefault("ts", now_ms)
        outcomes = await self.bus.publish_each([(room_id, event) for room_id, _, event in events],
                                               [event_id for _, event_id, _ in events])
        for (_, _, event), outcome in zip(events, outcomes, strict=True):
            if not isinstance(outcome, Exception) and outcome:
                self.metrics.events_in.labels(type=event["type"]).inc()
        return outcomes

    def publish_soon(self, room_id: int, event: dict[str, Any], on_lost: Callable[[], None]) -> bool:
        """Queue a lossy event (chat) for the next batch to the bus; False when the queue is full. `on_lost` is
        called if the bus then refuses it."""
        event.setdefault("ts", self.clock.now_ms())
        if not self.outbox.offer(room_id, event, on_lost):
            return False
        self.metrics.events_in.labels(type=event["type"]).inc()
        return True

    async def viewer_counts(self, room_ids: list[int]) -> dict[int, int]:
        return await self.presence.viewer_counts(self.clock.now_ms(), room_ids)

    async def moderators(self, room_id: int) -> frozenset[int]:
        return await moderation.room_moderators(self.node.pool, room_id)

    # joining

    async def join_events(
        self, room_id: int, viewer: Viewer, since: tuple[str, int] | None
    ) -> tuple[list[dict[str, Any]], int]:
        """What a joining connection gets first (a snapshot, a replay, or a reset and snapshot) and its seq.

        The connection must already be attached to the room: a snapshot is then taken from the room's state on
        this node, with no await in between, so everything after it reaches the connection as events."""
        room = self.hub.rooms[room_id]
        for _ in range(JOIN_ATTEMPTS_MAX):
            await self.hub.settled(room)
            generation = room.generation
            joined = await self._join_once(room, viewer, since)
            if joined is not None and room.generation == generation:
                return joined
        raise BusUnavailable(f"room {room_id} kept restarting while a connection joined it")

    async def _join_once(
        self, room: RoomHub, viewer: Viewer, since: tuple[str, int] | None
    ) -> tuple[list[dict[str, Any]], int] | None:
        """`join_events` from the room as it is now; None when the room turned out stale and was checked."""
        if since is None:
            snapshot = self.snapshot(room, viewer)
            return await self._with_stream_state([snapshot]), snapshot["seq"]
        position = await self.bus.position(room.room_id)
        if position.epoch != room.epoch or position.seq < room.last_seq:
            await asyncio.wait([self.hub.check(room)])  # this node's copy of the room is stale: never hand it out
            return None
        epoch, since_seq = since
        reason = _resume_refusal(epoch, since_seq, position.epoch, position.seq, position.oldest_seq)
        if reason:
            reset = {"type": "reset", "epoch": room.epoch, "seq": room.last_seq, "ts": self.clock.now_ms(),
                     "reason": reason}
            snapshot = self.snapshot(room, viewer)
            return await self._with_stream_state([reset, snapshot]), snapshot["seq"]
        missed = await self.bus.replay(room.room_id, since_seq, position.seq)
        return [m.event for m in missed], position.seq

    def snapshot(self, room: RoomHub, viewer: Viewer) -> dict[str, Any]:
        """The room as a joiner first sees it, from this node's copy of the room state (the stream's state is
        filled in by `join_events`, after the snapshot's seq is fixed)."""
        rules = room.rules
        return {
            "type": "snapshot", "room": room.room_id, "epoch": room.epoch, "seq": room.last_seq,
            "ts": self.clock.now_ms(),
            "viewers": max(self._last_viewers.get(room.room_id, 0), len(room.connections)),
            "likes": room.likes, "state": "", "slow_mode_s": rules.slow_mode_s if rules else 0,
            "recent": list(room.recent_chat),
            "you": {"id": viewer.user_id, "name": viewer.name, "is_moderator": viewer.is_moderator},
            **(room.shop.snapshot() if room.shop is not None else {}),
        }

    async def _with_stream_state(self, first: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`first` with the stream's state in its snapshot, read from PostgreSQL only now that its seq is fixed."""
        # A state change (go live, end) is committed before its event is published: one whose event the seq counts
        # is in this read, and a later one reaches the connection as an event. Read earlier (as the request began),
        # a stream going live meanwhile was `created` in the snapshot while its `live` event was behind the seq.
        snapshot = first[-1]
        stream = await get_stream(self.node.pool, snapshot["room"])
        snapshot["state"] = stream.state if stream else "ended"
        return first

    async def _restart_viewers(self, room: RoomHub) -> None:
        """The room began again in a new epoch: one `reset` and a fresh snapshot for each of its viewers."""
        try:
            stream = await get_stream(self.node.pool, room.room_id)
            state = stream.state if stream else "ended"
        except Exception as exc:
            log.warning("room %d restarts without its stream state: %s", room.room_id, exc)
            state = ""
        now_ms = self.clock.now_ms()
        reset = {"type": "reset", "epoch": room.epoch, "seq": room.last_seq, "ts": now_ms, "reason": "bus-restarted"}
        for conn in list(room.connections):
            conn.restart([reset, {**self.snapshot(room, conn.viewer), "state": state}], room.last_seq)

    def rules(self, room_id: int) -> RoomRules | None:
        room = self.hub.rooms.get(room_id)
        return room.rules if room else None

    async def slow_mode_wait_ms(self, room_id: int, user_id: int, interval_s: int) -> int:
        """0 if the user may chat now under slow mode (and records it), else how long to wait."""
        key = f"lc:{{r{room_id}}}:slow:{user_id}"
        return int(await self._slow_mode(keys=[key], args=[self.clock.now_ms(), interval_s * 1000]))

    # hooks and loops

    async def _open_room(self, room_id: int) -> RoomRules:
        stream = await get_stream(self.node.pool, room_id)
        creator_id = stream.creator_id if stream else 0
        room = self.hub.rooms.get(room_id)
        if room is not None and self.node.shop is not None:
            room.shop = self.node.shop.room_view()  # events from now on are folded into it
        return await moderation.load_rules(self.node.pool, room_id, creator_id)

    async def _load_room_shop(self, room: RoomHub) -> None:
        """Once subscribed (so nothing after this read is missed), fold in the shop as PostgreSQL has it."""
        if room.shop is not None and self.node.shop is not None:
            await self.node.shop.load_room_view(room.room_id, room.shop)

    def _on_room_event(self, room_id: int, event: dict[str, Any]) -> None:
        kind = event["type"]
        room = self.hub.rooms.get(room_id)
        if kind in SHOP_EVENTS and room is not None and room.shop is not None:
            room.shop.apply(event)
        if kind != "moderation" or room is None or room.rules is None:
            return
        room.rules.apply(event)
        if event["action"] == "ban":
            for conn in list(room.connections):
                if conn.viewer.user_id == event["user_id"]:
                    conn.close(protocol.CLOSE_BANNED, "banned from this room")
        elif event["action"] == "moderator":
            for conn in room.connections:
                if conn.viewer.user_id == event["user_id"]:
                    conn.viewer = dataclasses.replace(conn.viewer, is_moderator=True)
        elif event["action"] == "blocked_words":
            asyncio.get_running_loop().create_task(self._reload_rules(room_id))

    async def _reload_rules(self, room_id: int) -> None:
        room = self.hub.rooms.get(room_id)
        if room is not None and room.rules is not None:
            fresh = await moderation.load_rules(self.node.pool, room_id, room.rules.creator_id)
            room.rules.set_blocked_words(list(fresh.blocked_words))

    async def refresh_presence(self) -> None:
        local = Counter(self.hub.viewers_by_room())
        now_ms = self.clock.now_ms()
        await self.presence.report(now_ms, local)
        totals = await self.presence.viewer_counts(now_ms, list(local))
        for room_id, count in totals.items():
            if self._last_viewers.get(room_id) != count:
                self.hub.push_local(room_id, {"type": "viewers", "count": count, "ts": now_ms})
        self._last_viewers = totals

    async def flush_likes(self) -> None:
        pending, self.likes_pending = self.likes_pending, Counter()
        for room_id, taps in pending.items():
            try:
                await self.publish(room_id, {"type": "like", "count": taps}, like_delta=taps)
            except Exception:
                self.likes_pending[room_id] += taps  # counted in the next flush, when the bus is back
                raise

    async def _every(self, period_ms: int, job: Any) -> None:
        while True:
            await asyncio.sleep(period_ms / 1000)
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background job %s failed; retrying next period", job.__name__)


def _resume_refusal(epoch: str, since_seq: int, epoch_now: str, seq_now: int, oldest_seq: int) -> str:
    """Why a resume from (epoch, since_seq) cannot be served from the replay window, or '' if it can."""
    if epoch != epoch_now:
        return "epoch-changed"
    if since_seq > seq_now:
        return "from-the-future"
    if since_seq < seq_now and since_seq + 1 < oldest_seq:
        return "window-exceeded"
    return ""
