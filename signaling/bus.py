"""The event bus over Redis: ordered publish with replay, one subscription per room per node.

Publishing runs one Lua script that assigns the room's next `seq`, appends to a bounded replay stream and
SPUBLISHes (sharded pub/sub: on a Redis Cluster only the shard that owns the room's slot carries it), so every node
sees a room's events in `seq` order and a resume can be served from the stream. An event published with an event id
(the money outbox's, commerce/event_outbox.py) goes out at most once per id: the room remembers its last
`dedup_event_ids_max` ids, and a second publish of one is a no-op that returns seq 0.
All of a room's keys share a hash tag (`{r<id>}`) so the script works on Redis Cluster too.

On the wire between nodes an event is `<epoch>|<seq>|<likes_total>|<msgpack body>`: the script stamps the epoch,
the seq and the room's like total after the event; the body is the event without them. The epoch on every message
lets a node see at once that the room's log was lost (Redis restarted empty) and started again in a new epoch.

When a subscription's connection comes back after an outage (or its channel moved to a promoted replica, see
shards.py), `on_resubscribed(room_id)` is called per room once Redis has confirmed it, so the node can check the
room's position against its own (see hub.py).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import redis.asyncio as redis

from livecore import scripts
from signaling.shards import ShardedSubscriber

log = logging.getLogger("livecore.bus")

_PUBLISH = """
if ARGV[5] ~= '' and redis.call('ZSCORE', KEYS[6], ARGV[5]) then
  return {redis.call('GET', KEYS[2]) or '', 0}
end
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = ARGV[2]
  redis.call('SET', KEYS[2], epoch)
  redis.call('DEL', KEYS[1], KEYS[3], KEYS[4])
end
local seq = redis.call('INCR', KEYS[1])
local likes = redis.call('HINCRBY', KEYS[4], 'likes', tonumber(ARGV[4]))
local msg = epoch .. '|' .. seq .. '|' .. likes .. '|' .. ARGV[1]
redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[3], '0-' .. seq, 'e', msg)
redis.call('SPUBLISH', KEYS[5], msg)
if ARGV[5] ~= '' then
  redis.call('ZADD', KEYS[6], seq, ARGV[5])
  redis.call('ZREMRANGEBYRANK', KEYS[6], 0, -tonumber(ARGV[6]) - 1)
end
return {epoch, seq}
"""


# A room's log that lost events but kept its epoch (an append-only file replayed short of the last writes) goes on
# in a new epoch from the seq it is at, so no client holds an (epoch, seq) that now names a different event. Only
# the epoch that was seen stale is replaced, so two nodes noticing together make one new epoch.
_RENEW_EPOCH = """
local epoch = redis.call('GET', KEYS[2])
if epoch == ARGV[1] or not epoch then
  epoch = ARGV[2]
  redis.call('SET', KEYS[2], epoch)
end
return {epoch, tonumber(redis.call('GET', KEYS[1]) or '0')}
"""


def room_tag(room_id: int) -> str:
    return f"{{r{room_id}}}"


def room_channel(room_id: int) -> str:
    return f"lc:{room_tag(room_id)}:events"


@dataclass(frozen=True)
class BusMessage:
    epoch: str
    seq: int
    event: dict[str, Any]


def pack_message(epoch: str, seq: int, likes_total: int, event: dict[str, Any]) -> bytes:
    """The bus wire form of an event (the Lua script builds the same bytes)."""
    return b"%s|%d|%d|" % (epoch.encode(), seq, likes_total) + msgpack.packb(event, use_bin_type=True)


def unpack_message(raw: bytes) -> BusMessage:
    """Parse `<epoch>|<seq>|<likes_total>|<body>` into the event a client sees, with `seq` (and `total` on
    likes)."""
    epoch_raw, seq_raw, likes_raw, body = raw.split(b"|", 3)
    event = msgpack.unpackb(body, raw=False)
    seq = int(seq_raw)
    event["seq"] = seq
    if event.get("type") == "like":
        event["total"] = int(likes_raw)
    elif event.get("type") == "chat":
        event["id"] = seq  # a chat message is named by its seq, e.g. for moderators to delete it
    return BusMessage(epoch_raw.decode(), seq, event)


@dataclass(frozen=True)
class RoomPosition:
    """Where a room's event log stands: its epoch, last seq, like total and the oldest replayable seq."""

    epoch: str
    seq: int
    likes: int
    oldest_seq: int


class Bus:
    """Publishes room events and delivers every subscribed room's events to `on_message(room_id, raw)`."""

    def __init__(self, client: redis.Redis, replay_events_max: int, dedup_event_ids_max: int) -> None:
        self._redis = client
        self._replay_events_max = replay_events_max
        self._dedup_event_ids_max = dedup_event_ids_max
        self._publish = client.register_script(_PUBLISH)
        self._renew_epoch = client.register_script(_RENEW_EPOCH)
        self._subscriber = ShardedSubscriber(client, self._deliver, self._confirm)
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self.on_message: Callable[[int, bytes], None] = lambda room_id, raw: None
        self.on_resubscribed: Callable[[int], None] = lambda room_id: None

    @property
    def available(self) -> bool:
        """False from a lost subscription connection until Redis confirms a subscription on it again: commands
        that need the bus are refused meanwhile instead of being accepted and lost."""
        return self._subscriber.available

    def available_for(self, room_id: int) -> bool:
        """The connection that carries the room's events is up (on a cluster: its shard's)."""
        return self._subscriber.available_for(room_channel(room_id))

    async def start(self, node_channel: str) -> None:
        # The node's own channel keeps a pub/sub connection open while no room is subscribed (and tells other
        # nodes this one is alive, see presence.py).
        await self._subscribe_channel(node_channel)
        await self._confirmed[node_channel]

    async def stop(self) -> None:
        await self._subscriber.stop()

    async def publish(self, room_id: int, event: dict[str, Any], like_delta: int = 0) -> tuple[str, int]:
        """Append `event` to the room's log and fan it out; returns (epoch, seq)."""
        epoch, seq = await self._publish(**self._script_call(room_id, event, like_delta))
        return epoch.decode() if isinstance(epoch, bytes) else str(epoch), int(seq)

    async def publish_many(self, events: list[tuple[int, dict[str, Any]]]) -> list[int]:
        """Publish (room_id, event) pairs in order, all in one round trip; the seq of each. Raises if any failed."""
        outcomes = await self.publish_each(events)
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                raise outcome
        return outcomes  # type: ignore[return-value]  # no exception among them

    async def publish_each(self, events: list[tuple[int, dict[str, Any]]], event_ids: list[str] | None = None
                           ) -> list[int | Exception]:
        """Publish (room_id, event) pairs in order, all in one round trip; with `event_ids`, each event whose id
        this room has already published is skipped. The seq of each (0: skipped), or the error that kept it out:
        on a cluster a shard that is down keeps out only its rooms' events (see scripts.call_each)."""
        ids = event_ids or [""] * len(events)
        calls = [self._script_call(room_id, event, 0, event_id) for (room_id, event), event_id in
                 zip(events, ids, strict=True)]
        replies = await scripts.call_each(self._redis, self._publish,
                                          [(call["keys"], call["args"]) for call in calls])
        return [reply if isinstance(reply, Exception) else int(reply[1]) for reply in replies]

    def _script_call(self, room_id: int, event: dict[str, Any], like_delta: int, event_id: str = ""
                     ) -> dict[str, list[Any]]:
        tag = room_tag(room_id)
        keys = [f"lc:{tag}:seq", f"lc:{tag}:epoch", f"lc:{tag}:replay", f"lc:{tag}:state", room_channel(room_id),
                f"lc:{tag}:published"]
        body = msgpack.packb(event, use_bin_type=True)
        return {"keys": keys, "args": [body, secrets.token_hex(6), self._replay_events_max, like_delta, event_id,
                                       self._dedup_event_ids_max]}

    async def subscribe(self, room_id: int) -> None:
        """Subscribe this node to a room; returns once Redis has confirmed, so nothing after is missed."""
        channel = room_channel(room_id)
        if channel not in self._confirmed:
            await self._subscribe_channel(channel)
        await self._confirmed[channel]

    async def unsubscribe(self, room_id: int) -> None:
        channel = room_channel(room_id)
        if self._confirmed.pop(channel, None) is not None:
            await self._subscriber.unsubscribe(channel)

    async def _subscribe_channel(self, channel: str) -> None:
        self._confirmed[channel] = asyncio.get_running_loop().create_future()
        try:
            await self._subscriber.subscribe(channel)
        except BaseException:
            del self._confirmed[channel]  # so the next join tries again instead of waiting for this one
            raise

    def _confirm(self, channel: str) -> None:
        waiter = self._confirmed.get(channel)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        elif waiter is not None and channel.endswith(":events"):
            # Confirmed again after a reconnection: whatever the room's log holds now, nothing is missed after.
            self.on_resubscribed(_channel_room(channel))

    def _deliver(self, channel: str, raw: bytes) -> None:
        if not channel.endswith(":events"):
            return
        room_id = _channel_room(channel)
        try:
            self.on_message(room_id, raw)
        except Exception:
            log.exception("dropping an undeliverable bus message for room %d", room_id)

    async def position(self, room_id: int) -> RoomPosition:
        """The room's epoch, seq, like total and oldest replayable seq, read atomically."""
        tag = room_tag(room_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            # A room that never had an event gets its epoch now, so a resume from this position is valid.
            pipe.set(f"lc:{tag}:epoch", secrets.token_hex(6), nx=True)
            pipe.get(f"lc:{tag}:epoch").get(f"lc:{tag}:seq").hget(f"lc:{tag}:state", "likes")
            pipe.xrange(f"lc:{tag}:replay", "-", "+", count=1)
            _, epoch, seq, likes, oldest = await pipe.execute()
        return RoomPosition(
            epoch=epoch.decode() if epoch else "",
            seq=int(seq or 0),
            likes=int(likes or 0),
            oldest_seq=_entry_seq(oldest[0][0]) if oldest else int(seq or 0) + 1,
        )

    async def renew_epoch(self, room_id: int, stale_epoch: str) -> tuple[str, int]:
        """Go on in a new epoch from the room's seq, unless another node already replaced `stale_epoch`; the
        room's (epoch, seq) now."""
        tag = room_tag(room_id)
        epoch, seq = await self._renew_epoch(keys=[f"lc:{tag}:seq", f"lc:{tag}:epoch"],
                                             args=[stale_epoch, secrets.token_hex(6)])
        return epoch.decode() if isinstance(epoch, bytes) else str(epoch), int(seq)

    async def replay(self, room_id: int, after_seq: int, through_seq: int) -> list[BusMessage]:
        """Events with after_seq < seq <= through_seq still in the replay window, oldest first."""
        if through_seq <= after_seq:
            return []
        entries = await self._redis.xrange(
            f"lc:{room_tag(room_id)}:replay", f"0-{after_seq + 1}", f"0-{through_seq}"
        )
        return [unpack_message(fields[b"e"]) for _, fields in entries]

    async def recent(self, room_id: int, count: int) -> list[BusMessage]:
        """The last `count` events in the replay window, oldest first."""
        entries = await self._redis.xrevrange(f"lc:{room_tag(room_id)}:replay", "+", "-", count=count)
        return [unpack_message(fields[b"e"]) for _, fields in reversed(entries)]


def _channel_room(channel: str) -> int:
    return int(channel[len("lc:{r"):].split("}", 1)[0])


def _entry_seq(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[1])
