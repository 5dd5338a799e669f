"""A stream is live only while someone publishes: created until its publisher connects, live through a reconnect
grace, ended when nobody published in time or the publisher did not come back. Time is the node's clock, driven
by the tests; the sweep that ends overdue streams is called directly instead of waiting for the upkeep's."""

from __future__ import annotations

from mediapeers import publish, wait_for, watch, whip_offer
from roomclient import events_until, send

from livecore.clock import ManualClock
from livecore.media import MEDIA

GRACE_MS = 10_000
UNPUBLISHED_MS = 60_000


def _stream_event(state: str):  # type: ignore[no-untyped-def]
    return lambda seen: any(e.get("type") == "stream" and e.get("state") == state for e in seen)


async def _state(node, stream_id: int) -> str:  # type: ignore[no-untyped-def]
    async with node.http.get(f"{node.url}/api/streams/{stream_id}") as response:
        return (await response.json())["state"]


async def _live_ids(node) -> set[int]:  # type: ignore[no-untyped-def]
    async with node.http.get(f"{node.url}/api/live") as response:
        return {s["id"] for s in (await response.json())["streams"]}


async def _joined(node, stream: dict, account: dict):  # type: ignore[no-untyped-def]
    """The creator's room socket, once its snapshot arrived (so it hears every event after)."""
    socket = await node.ws(stream["id"], account["token"])
    await events_until(socket, lambda seen: any(e.get("type") == "snapshot" for e in seen))
    return socket


async def _node(node_factory):  # type: ignore[no-untyped-def]
    clock = ManualClock()
    node = await node_factory(clock=clock, media_publish_grace_ms=GRACE_MS, stream_unpublished_ms_max=UNPUBLISHED_MS)
    account = await node.signup(roles=["creator"])
    return node, clock, account


async def test_a_stream_is_live_once_its_publisher_connects(node_factory, http):  # type: ignore[no-untyped-def]
    node, clock, account = await _node(node_factory)
    stream = await node.create_stream(account["token"], live=False)
    assert stream["state"] == "created" and stream["started_at"] is None
    assert stream["id"] not in await _live_ids(node)
    socket = await _joined(node, stream, account)
    publisher = await publish(http, node.url, stream)
    plane = node.app[MEDIA]
    try:
        assert publisher.status == 201
        await events_until(socket, _stream_event("live"), 10)
        assert plane.rooms[stream["id"]].connected
        assert await _state(node, stream["id"]) == "live"
        assert stream["id"] in await _live_ids(node)
        clock.advance(10 * GRACE_MS / 1000)  # a connected publisher keeps it live however long it goes on
        assert stream["id"] not in await plane.sweep_streams()
        assert await _state(node, stream["id"]) == "live"
    finally:
        await publisher.pc.close()


async def test_a_stream_nobody_publishes_ends(node_factory, http):  # type: ignore[no-untyped-def]
    node, clock, account = await _node(node_factory)
    stream = await node.create_stream(account["token"], live=False)
    socket = await _joined(node, stream, account)
    plane = node.app[MEDIA]
    clock.advance(UNPUBLISHED_MS / 1000 - 1)
    assert stream["id"] not in await plane.sweep_streams()
    assert await _state(node, stream["id"]) == "created"
    clock.advance(2)
    await plane.sweep_streams()  # (or the upkeep's own sweep, if it ran first)
    assert await _state(node, stream["id"]) == "ended"
    await events_until(socket, _stream_event("ended"), 5)
    assert stream["id"] not in await _live_ids(node)
    late = await publish(http, node.url, stream)
    assert late.status == 409


async def test_a_failed_publish_attempt_does_not_shorten_the_wait(node_factory, http):  # type: ignore[no-untyped-def]
    """A publisher that never connects leaves the stream waiting for the next attempt until its deadline."""
    node, clock, account = await _node(node_factory)
    stream = await node.create_stream(account["token"], live=False)
    plane = node.app[MEDIA]
    pc = await whip_offer()
    headers = {"Authorization": f"Bearer {stream['stream_key']}", "Content-Type": "application/sdp"}
    async with http.post(f"{node.url}/whip/{stream['id']}", data=pc.localDescription.sdp,
                         headers=headers) as response:
        assert response.status == 201
    await pc.close()  # the answer is never applied: ICE cannot complete
    room = plane.rooms[stream["id"]]
    assert not room.connected
    await plane.close_room(room, "the publisher's connection failed")  # what aiortc's ICE timeout would do
    clock.advance(GRACE_MS / 1000 + 1)
    assert stream["id"] not in await plane.sweep_streams()
    assert await _state(node, stream["id"]) == "created"


async def test_a_publisher_back_within_the_grace_continues_the_stream(node_factory, http):  # type: ignore[no-untyped-def]
    node, clock, account = await _node(node_factory)
    stream = await node.create_stream(account["token"], live=False)
    socket = await _joined(node, stream, account)
    plane = node.app[MEDIA]
    first = await publish(http, node.url, stream)
    await events_until(socket, _stream_event("live"), 10)
    room = plane.rooms[stream["id"]]
    await first.pc.close()  # no DELETE: a dropped connection
    await wait_for(lambda: room.closed, 10)
    clock.advance(GRACE_MS / 1000 - 1)
    assert stream["id"] not in await plane.sweep_streams()
    assert await _state(node, stream["id"]) == "live"
    assert stream["id"] in await _live_ids(node)

    second = await publish(http, node.url, stream)
    viewer = None
    try:
        assert second.status == 201
        await events_until(socket, _stream_event("live"), 10)
        viewer = await watch(http, node.url, stream["id"])
        await wait_for(lambda: len(viewer.video_pts) >= 5, 15)
        clock.advance(2 * GRACE_MS / 1000)  # past the first publisher's grace: the second one is connected
        assert stream["id"] not in await plane.sweep_streams()
        assert await _state(node, stream["id"]) == "live"
        async with http.delete(f"{node.url}{second.location}",
                               headers={"Authorization": f"Bearer {stream['stream_key']}"}) as response:
            assert response.status == 200
        await events_until(socket, _stream_event("ended"), 5)
        assert await _state(node, stream["id"]) == "ended"
    finally:
        if viewer:
            await viewer.close()
        await second.pc.close()


async def test_ending_is_announced_once_whoever_ends_it(node_factory, http):  # type: ignore[no-untyped-def]
    """The creator's end, the publisher's DELETE and an overdue sweep may race: one ended event, one end."""
    from livecore.streams import end_stream

    node, clock, account = await _node(node_factory)
    stream = await node.create_stream(account["token"], live=False)
    socket = await _joined(node, stream, account)
    assert await end_stream(node.node, stream["id"], "the test ended it")
    assert not await end_stream(node.node, stream["id"], "the test ended it again")
    clock.advance(UNPUBLISHED_MS / 1000 + 1)
    assert stream["id"] not in await node.app[MEDIA].sweep_streams()
    async with http.post(f"{node.url}/api/streams/{stream['id']}/end",
                         headers={"Authorization": f"Bearer {account['token']}"}) as response:
        assert response.status == 200 and (await response.json())["state"] == "ended"
    await send(socket, {"type": "chat", "text": "after the end"})  # a marker: what came before it has arrived
    events = await events_until(socket, lambda seen: any(e.get("text") == "after the end" for e in seen), 5)
    assert [e["state"] for e in events if e.get("type") == "stream"] == ["ended"]
