"""A clean restart: streams a stopped or killed node left live with no publisher are ended when a node starts.

A live stream is vouched for by a live node: the node that owns its room in the media registry (its publisher's),
or, before any publisher came, the node it was created on. A node registers itself in the registry and keeps
refreshing it, so a stopped node stops vouching within `media_owner_ttl_ms` (at once when it stopped cleanly).
The starting node counts itself as not live: whatever the registry says it owns is left over from its previous
run. Every stream no live node vouches for is ended once (nodes starting together race on one conditional
UPDATE in `end_stream`) and its room hears `stream ended`.
"""

from __future__ import annotations

import logging

from livecore.media.registry import MediaRegistry
from livecore.node import Node
from livecore.streams import end_stream
from livecore.streams import streams as stream_records

log = logging.getLogger("livecore.media.orphans")


async def end_orphaned_streams(node: Node, registry: MediaRegistry) -> list[int]:
    """End the live streams no live node vouches for, announcing each in its room; the ids ended."""
    ended: list[int] = []
    after_id = 0
    batch_max = node.settings.orphan_sweep_batch_max
    while True:  # ends: every batch moves after_id past the ids it read
        batch = await stream_records.live_stream_origins(node.pool, after_id, batch_max)
        if not batch:
            break
        after_id = batch[-1][0]
        ended += await _end_batch(node, registry, batch)
        if len(batch) < batch_max:
            break
    if ended:
        log.info("ended %d stream(s) left live without a publisher: %s", len(ended), ended[:20])
    return ended


async def _end_batch(node: Node, registry: MediaRegistry, batch: list[tuple[int, str | None]]) -> list[int]:
    ids = [stream_id for stream_id, _ in batch]
    owners = await registry.owners(ids)
    vouchers = {n for n in owners if n} | {origin for _, origin in batch if origin}
    alive = await registry.live_nodes(vouchers - {registry.node_id})
    orphans = [stream_id for (stream_id, origin), owner in zip(batch, owners, strict=True)
               if owner not in alive and origin not in alive]
    for stream_id, owner in zip(ids, owners, strict=True):
        if owner == registry.node_id:
            await registry.release(stream_id)  # this node's previous run owned it and is gone
    return [stream_id for stream_id in orphans
            if await end_stream(node, stream_id, "the node it was live on stopped without its publisher")]
