"""Committed means announced: room events born from committed money (gifts, bids) are written in the money's own
transaction and reach a connected viewer exactly once, in order, whatever happened to the bus or the relay between.

Against real processes: a Valkey of the test's own (append-only, fsync on every write) that is killed with -9 and
started again while gifts and bids are committed, and a relay killed between its publish and its delete."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from typing import Any

import pytest
from livenode import NodeFactory, RunningNode, Servers
from lots import START_CENTS, bid, bidder, open_auction, room_with_product
from money import api, assert_invariants, buy_coins, commerce_of, key
from prometheus_client import CollectorRegistry
from roomclient import events_until

from commerce import gifts
from commerce.event_outbox import EventRelay
from livecore.clock import ManualClock
from livecore.embedded import EmbeddedPostgres, EmbeddedValkey

ROUNDS = 6  # gifts and bids committed while the bus is down, each
DELIVERY_S_MAX = 30.0  # how long the viewer may wait for the events once the bus is back (a bound, not a figure)


def kill(valkey: EmbeddedValkey) -> None:
    assert valkey.process is not None
    os.kill(valkey.process.pid, signal.SIGKILL)
    valkey.process.wait()


async def outbox_depth(node: RunningNode) -> int:
    return await node.node.pool.fetchval("SELECT count(*) FROM room_event_outbox")


async def send_gift(node: RunningNode, token: str, stream_id: int, gift_id: str = "rose") -> int:
    status, sent = await api(node, "POST", f"/api/streams/{stream_id}/gifts", token,
                             {"gift_id": gift_id, "idempotency_key": key()})
    assert status == 200, sent
    return sent["transaction_id"]


async def api_text(node: RunningNode, path: str) -> tuple[int, str]:
    async with node.http.get(node.url + path) as response:
        return response.status, await response.text()


def gift_ids(events: list[dict[str, Any]]) -> list[int]:
    return [e["id"] for e in events if e["type"] == "gift"]


def auction_versions(events: list[dict[str, Any]], auction_id: int) -> list[int]:
    return [e["version"] for e in events if e["type"] == "auction" and e["auction_id"] == auction_id]


async def test_gifts_and_bids_committed_while_valkey_is_dead_reach_the_viewer_once_in_order(
    own_valkey: EmbeddedValkey, node_factory: NodeFactory, servers: Servers
) -> None:
    node = await node_factory(on=Servers(servers.database_url, own_valkey.url, servers.directory),
                              event_relay_retry_ms_max=20)  # back before the node has resubscribed
    room = await room_with_product(node)
    stream_id = room.stream["id"]
    sender, bidders = await node.signup(), [await bidder(node), await bidder(node)]
    await buy_coins(node, sender["token"])
    auction = await open_auction(node, room)
    viewer = await node.ws(stream_id)
    seen = await events_until(viewer, lambda evs: auction_versions(evs, auction["id"]) == [1]
                              or any(e["type"] == "snapshot" and e.get("auction") for e in evs), DELIVERY_S_MAX)

    kill(own_valkey)
    try:
        committed_gifts: list[int] = []
        price = START_CENTS
        for n in range(ROUNDS):
            committed_gifts.append(await send_gift(node, sender["token"], stream_id))
            status, placed = await bid(node, bidders[n % 2]["token"], auction["id"], price)
            assert status == 200, placed
            price = placed["auction"]["min_next_cents"]
        final_version = placed["auction"]["version"]
        assert await outbox_depth(node) >= 2 * ROUNDS, "the events wait in PostgreSQL while the bus is away"
        _, metrics = await api_text(node, "/metrics")
        assert "livecore_event_outbox_depth 0.0" not in metrics, "the operator sees them waiting"
    finally:
        own_valkey.start()  # also when the test failed: the node stops cleanly only with its bus there
    seen += await events_until(
        viewer, lambda evs: set(committed_gifts) <= set(gift_ids(evs))
        and final_version in auction_versions(evs, auction["id"]), DELIVERY_S_MAX)
    # One more gift after the recovery: anything the relay still sent twice would arrive before it.
    last = await send_gift(node, sender["token"], stream_id)
    seen += await events_until(viewer, lambda evs: last in gift_ids(evs), DELIVERY_S_MAX)

    assert gift_ids(seen) == [*committed_gifts, last], "every committed gift once, in commit order"
    versions = auction_versions(seen, auction["id"])
    assert versions == sorted(versions) and final_version in versions, "the lot's changes in order"
    changes = [(e["version"], e["action"]) for e in seen if e["type"] == "auction"]
    assert len(changes) == len(set(changes)), "each change of the lot once (a batch's bid and outbid share a version)"
    bids_seen = sorted(entry["seq"] for e in seen if e["type"] == "auction" for entry in e.get("bids", ()))
    assert bids_seen == list(range(1, ROUNDS + 1)), "each bid's history entry reached the viewer once"
    room_seqs = [e["seq"] for e in seen if "seq" in e and e["type"] != "snapshot"]
    assert room_seqs == sorted(set(room_seqs)), "the room's events arrived once each, in seq order"
    await assert_invariants(node)


class CrashAfterPublish:
    """The room plane as a relay sees it, except that the relay dies right after the bus took its events: the
    publish went through, the rows were not deleted (as if the node were killed, or the answer lost)."""

    def __init__(self, plane: Any) -> None:
        self.plane = plane
        self.published = 0

    async def publish_once(self, events: list[tuple[int, str, dict[str, Any]]]) -> list[int | Exception]:
        self.published += sum(1 for seq in await self.plane.publish_once(events) if seq)
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0)  # the cancellation lands here, between the publish and the delete
        raise AssertionError("unreachable: the relay was cancelled")


def on_own_servers(own_postgres: EmbeddedPostgres, own_valkey: EmbeddedValkey, servers: Servers) -> Servers:
    """A PostgreSQL and a Valkey of the test's own: the outbox then holds this test's rows only (the shared database
    may hold rows of other tests' rooms, which any relay would also take), and the bus, which remembers published
    event ids per room, is as new as the database whose ids it remembers."""
    return Servers(own_postgres.url, own_valkey.url, servers.directory)


async def test_a_relay_killed_after_its_publish_sends_nothing_twice(
        own_postgres: EmbeddedPostgres, own_valkey: EmbeddedValkey, node_factory: NodeFactory, servers: Servers
) -> None:  # servers first: they stop after the nodes
    clock = ManualClock()
    node = await node_factory(clock=clock, on=on_own_servers(own_postgres, own_valkey, servers),
                              event_relay_lease_ms=1000)  # shorter than a combo's window
    money = commerce_of(node)
    creator, sender = await node.signup(), await node.signup()
    stream = await node.create_stream(creator["token"])
    await buy_coins(node, sender["token"])
    viewer = await node.ws(stream["id"])
    await events_until(viewer, lambda evs: any(e["type"] == "snapshot" for e in evs))
    await money.relay.stop()  # this node's relay stands aside; the crashing one runs first
    committed = [await send_gift(node, sender["token"], stream["id"], "heart") for _ in range(3)]
    waiting = await outbox_depth(node)
    assert waiting >= 3

    crashing_plane = CrashAfterPublish(node.plane)
    crashing = EventRelay(dataclasses.replace(node.node, rooms=crashing_plane, registry=CollectorRegistry()),
                          lambda rows: gifts.complete(money, rows))
    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(crashing.relay_once())
    assert crashing_plane.published == waiting, "the bus took them"
    assert await outbox_depth(node) == waiting, "but the rows are still there: the relay died before its delete"
    first_time = await events_until(viewer, lambda evs: set(committed) <= set(gift_ids(evs)))

    assert await money.relay.relay_once() == 0, "nobody takes them while the dead relay's lease holds"
    clock.advance(node.node.settings.event_relay_lease_ms / 1000)
    published_before = money.relay.metrics.published._value.get()
    assert await money.relay.relay_once() == waiting, "the lease ran out: a relay takes them again"
    assert money.relay.metrics.published._value.get() == published_before, "and the bus publishes none again"
    assert await outbox_depth(node) == 0

    money.relay.start()
    later = await send_gift(node, sender["token"], stream["id"], "heart")
    again = await events_until(viewer, lambda evs: later in gift_ids(evs))
    seen = first_time + again
    assert gift_ids(seen) == [*committed, later], "no gift twice at the viewer"
    assert [e["combo"] for e in seen if e["type"] == "gift"] == [1, 2, 3, 4], "nor counted twice in its combo"
    await assert_invariants(node)


class HeldPublish:
    """The room plane as a relay sees it, except that a publish waits until the test lets it go: a relay caught
    in the middle of its round, holding its claim."""

    def __init__(self, plane: Any) -> None:
        self.plane = plane
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def publish_once(self, events: list[tuple[int, str, dict[str, Any]]]) -> list[int | Exception]:
        self.entered.set()
        await self.release.wait()
        return await self.plane.publish_once(events)


def relay_of(node: RunningNode, plane: Any) -> EventRelay:
    """Another relay on the node's database and bus (as another node would run), publishing through `plane`."""
    return EventRelay(dataclasses.replace(node.node, rooms=plane, registry=CollectorRegistry()),
                      lambda rows: gifts.complete(commerce_of(node), rows))


async def test_a_room_s_events_wait_for_an_older_one_another_relay_holds(
        own_postgres: EmbeddedPostgres, own_valkey: EmbeddedValkey, node_factory: NodeFactory, servers: Servers
) -> None:  # servers first: they stop after the nodes
    node = await node_factory(on=on_own_servers(own_postgres, own_valkey, servers))
    money = commerce_of(node)
    creator, other_creator, sender = await node.signup(), await node.signup(), await node.signup()
    stream = await node.create_stream(creator["token"])
    other = await node.create_stream(other_creator["token"])
    await buy_coins(node, sender["token"])
    viewer, other_viewer = await node.ws(stream["id"]), await node.ws(other["id"])
    for socket in (viewer, other_viewer):
        await events_until(socket, lambda evs: any(e["type"] == "snapshot" for e in evs))
    await money.relay.stop()

    first = await send_gift(node, sender["token"], stream["id"])
    held = HeldPublish(node.plane)
    holding = asyncio.create_task(relay_of(node, held).relay_once())
    await held.entered.wait()  # it has claimed `first` and not published it yet
    second = await send_gift(node, sender["token"], stream["id"])
    elsewhere = await send_gift(node, sender["token"], other["id"])

    other_relay = relay_of(node, node.plane)
    assert await other_relay.relay_once() == 2, "it claims what the held relay does not hold, publishes one"
    seen_elsewhere = await events_until(other_viewer, lambda evs: elsewhere in gift_ids(evs))
    assert gift_ids(seen_elsewhere) == [elsewhere], "another room's event does not wait"
    assert await outbox_depth(node) == 2, "`second` waits: an older event of its room is still being published"

    held.release.set()
    assert await holding == 1
    assert await other_relay.relay_once() == 1
    seen = await events_until(viewer, lambda evs: second in gift_ids(evs))
    assert gift_ids(seen) == [first, second], "the room's events in commit order, once each"
    assert await outbox_depth(node) == 0


async def test_another_node_s_relay_wakes_on_the_commit_not_on_a_poll_tick(
        own_postgres: EmbeddedPostgres, own_valkey: EmbeddedValkey, node_factory: NodeFactory, servers: Servers
) -> None:  # servers first: they stop after the nodes
    on = on_own_servers(own_postgres, own_valkey, servers)
    node = await node_factory(on=on, event_relay_poll_ms=3_600_000)  # a poll tick would come in an hour
    other = await node_factory(on=on, event_relay_poll_ms=3_600_000)
    await commerce_of(node).relay.stop()  # so only the NOTIFY of the commit can wake a relay: the other node's
    creator, sender = await node.signup(), await node.signup()
    stream = await node.create_stream(creator["token"])
    await buy_coins(node, sender["token"])
    viewer = await node.ws(stream["id"])
    await events_until(viewer, lambda evs: any(e["type"] == "snapshot" for e in evs))
    for _ in range(3):  # the other relay is idle between them, waiting for the next commit
        committed = await send_gift(node, sender["token"], stream["id"])
        seen = await events_until(viewer, lambda evs, tx=committed: tx in gift_ids(evs))
        gift = next(e for e in seen if e["type"] == "gift")
        assert gift["id"] == committed and gift["ts"] > 0
    # The viewer can see the third gift before that relay has deleted its row and counted it: read until it has.
    counted = ("livecore_event_outbox_publish_age_seconds_count 3.0", "livecore_event_outbox_published_total 3.0")
    async with asyncio.timeout(10):
        while True:
            status, metrics = await api_text(other, "/metrics")
            assert status == 200
            if all(line in metrics for line in counted):
                break
            await asyncio.sleep(0.05)
    status, metrics = await api_text(node, "/metrics")
    assert "livecore_event_outbox_published_total 0.0" in metrics, "only the woken relay published"


async def test_a_pin_changed_while_valkey_is_dead_is_kept_and_reaches_the_viewer(
    own_valkey: EmbeddedValkey, node_factory: NodeFactory, servers: Servers
) -> None:
    """Pinning is must-deliver like money's events: a pin the node commits while the bus is away is answered as
    done and reaches a viewer already in the room once the bus is back (not a 503 for a change that was made)."""
    node = await node_factory(on=Servers(servers.database_url, own_valkey.url, servers.directory),
                              event_relay_retry_ms_max=20)
    room = await room_with_product(node)
    stream_id = room.stream["id"]
    viewer = await node.ws(stream_id)
    await events_until(viewer, lambda evs: any(e["type"] == "snapshot" for e in evs), DELIVERY_S_MAX)
    path = f"/api/streams/{stream_id}/pin"
    kill(own_valkey)
    try:
        status, pinned = await api(node, "POST", path, room.seller["token"], {"product_id": room.product["id"]})
        assert status == 200 and pinned["pin_version"] == 1, pinned
        status, unpinned = await api(node, "DELETE", path, room.seller["token"])
        assert status == 200 and unpinned["pin_version"] == 2, unpinned
    finally:
        own_valkey.start()
    seen = await events_until(viewer, lambda evs: any(e["type"] == "product_pinned" and e["pin_version"] == 2
                                                      for e in evs), DELIVERY_S_MAX)
    pins = [(e["pin_version"], e["product"]["id"] if e["product"] else None) for e in seen
            if e["type"] == "product_pinned"]
    assert pins == [(1, room.product["id"]), (2, None)], "each pin once, in order"
