"""A stream's life: created, live while someone publishes (or within the reconnect grace), ended for everyone.

`end_stream` is the one way a stream ends, whoever ends it (its creator, its publisher's DELETE, the sweep of
overdue streams, a node starting up): the record first, then the room hears it once, then the publisher is closed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from livecore.node import Node
from livecore.streams import streams

log = logging.getLogger("livecore.streams")

Publishing = Callable[[list[int]], Awaitable[set[int]]]

OVERDUE_REASONS = {"created": "nobody published it in time", "live": "its publisher did not come back in time"}


async def end_stream(node: Node, stream_id: int, reason: str, overdue_at_ms: int | None = None) -> bool:
    """End a stream for everyone: record it, tell its room, close its publisher on this node. False when it had
    already ended (or, with `overdue_at_ms`, was not overdue then), and then nothing is announced."""
    if not await streams.mark_ended(node.pool, stream_id, overdue_at_ms):
        return False
    log.info("stream %s ended: %s", stream_id, reason)
    if node.rooms:
        await node.rooms.publish(stream_id, {"type": "stream", "state": "ended"})
    if node.shop:
        await _close_auction(node, stream_id)
    if node.media:
        await node.media.stop_publishing(stream_id, reason)
    return True


async def _close_auction(node: Node, stream_id: int) -> None:
    """The room's open auction closes with its stream: the leader wins and is charged as after a close by time, and
    with no bids the lot is unsold. When that fails here, every node's auction sweep closes it instead."""
    assert node.shop is not None
    try:
        await node.shop.close_ended_rooms()
    except Exception:
        log.exception("stream %s ended but its auction was not closed now; the auction sweep will", stream_id)


async def go_live(node: Node, stream_id: int) -> bool:
    """A publisher connected: the stream is live until it has been gone for the grace, and its room hears it.
    False when the stream had already ended."""
    deadline_ms = node.clock.now_ms() + node.settings.media_publish_grace_ms
    if not await streams.mark_live(node.pool, stream_id, deadline_ms):
        return False
    if node.rooms:
        await node.rooms.publish(stream_id, {"type": "stream", "state": "live"})
    return True


async def end_overdue_streams(node: Node, publishing: Publishing) -> list[int]:
    """End the streams whose publisher deadline has passed, except those `publishing` says have a publisher right
    now (on any node); returns the ids this call ended."""
    now_ms = node.clock.now_ms()
    overdue = await streams.overdue_streams(node.pool, now_ms, node.settings.stream_sweep_batch_max)
    if not overdue:
        return []
    busy = await publishing([stream_id for stream_id, _ in overdue])
    ended = []
    for stream_id, state in overdue:
        if stream_id not in busy and await end_stream(node, stream_id, OVERDUE_REASONS.get(state, state), now_ms):
            ended.append(stream_id)
    return ended
