"""A client that stops reading loses lossy events first, then is closed with CLOSE_SLOW_CONSUMER and resumes."""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

import aiohttp
from livenode import NodeFactory
from roomclient import events_until, receive_events

from loadtest import wsframe
from signaling import protocol

PAD = "p" * 3000  # big events fill the socket buffers quickly
PUBLISH_MAX = 6000  # a bound on the test's own loop


def _sample(node, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    return node.node.registry.get_sample_value(name, labels) or 0.0


async def test_slow_consumer_loses_lossy_then_is_closed_and_resumes(node_factory: NodeFactory) -> None:
    node = await node_factory(write_buffer_bytes_high=64 * 1024, backlog_events_max=50, replay_events_max=20000,
                              chat_display_per_s_max=100000)
    creator = await node.signup()
    room = (await node.create_stream(creator["token"]))["id"]
    slow = await node.ws(room, creator["token"])
    [snapshot] = await receive_events(slow)
    fast = await node.ws(room)
    await receive_events(fast)

    published = {"chat": 0, "moderation": 0}
    fast_got: list[dict] = []
    while not _sample(node, "livecore_slow_consumer_closes_total") and sum(published.values()) < PUBLISH_MAX:
        for i in range(20):
            kind = "moderation" if i % 4 == 0 else "chat"
            event = ({"type": "moderation", "action": "note", "pad": PAD} if kind == "moderation"
                     else {"type": "chat", "user": {"id": 1, "name": "x"}, "text": PAD})
            last_seq = await node.plane.publish(room, event)
            published[kind] += 1
        # The fast client keeps up, so only the slow one falls behind.
        fast_got += await events_until(fast, lambda got, seq=last_seq: any(e.get("seq") == seq for e in got))

    assert _sample(node, "livecore_slow_consumer_closes_total") == 1
    assert _sample(node, "livecore_lossy_events_dropped_total", reason="slow_connection") > 0
    assert len([e for e in fast_got if e["type"] == "moderation"]) == published["moderation"]
    assert len([e for e in fast_got if e["type"] == "chat"]) == published["chat"]

    slow_got: list[dict] = []
    while (message := await slow.receive(timeout=10)).type != aiohttp.WSMsgType.CLOSE:
        slow_got += protocol.decode_events(protocol.JSON, message.data)
    assert message.data == protocol.CLOSE_SLOW_CONSUMER
    must = [e["seq"] for e in slow_got if e["type"] == "moderation"]
    lossy = [e for e in slow_got if e["type"] == "chat"]
    assert must == sorted(must) and len(lossy) < published["chat"]

    # Resuming from the last event it saw brings back every must-deliver event it missed, in order.
    last_seq = max(e["seq"] for e in slow_got if "seq" in e)
    resumed = await node.ws(room, creator["token"], since=f"{snapshot['epoch']}:{last_seq}")
    replay = await events_until(resumed, lambda got: bool(got) and got[-1]["seq"] >= snapshot["seq"] + 1)
    all_must = sorted(must + [e["seq"] for e in replay if e["type"] == "moderation"])
    assert len(all_must) == published["moderation"] and len(set(all_must)) == len(all_must)


STALLED_RECEIVE_BUFFER_BYTES = 16 * 1024  # the stalled viewer's own socket takes in little (the kernel doubles it)
STALLED_BYTES_MAX = 1024 * 1024  # receive buffer + unsent limit + write_buffer_bytes_high + frames, with room


async def _stalled_viewer(node, room_id: int) -> socket.socket:  # type: ignore[no-untyped-def]
    """A viewer that completes the upgrade and then never reads again, with a small receive buffer."""
    loop = asyncio.get_running_loop()
    url = urlsplit(node.url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, STALLED_RECEIVE_BUFFER_BYTES)
    sock.setblocking(False)
    await loop.sock_connect(sock, (url.hostname, url.port))
    key = wsframe.new_key()
    await loop.sock_sendall(sock, wsframe.upgrade_request(url.hostname or "", url.port or 80,
                                                          f"/ws/rooms/{room_id}", key, [protocol.JSON]))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await loop.sock_recv(sock, 1)  # byte by byte: nothing after the upgrade's answer is read
        assert chunk, "the node closed during the upgrade"
        head += chunk
    assert wsframe.parse_upgrade_response(head.split(b"\r\n\r\n")[0], key) == protocol.JSON
    return sock


def _slow_drops(node) -> float:  # type: ignore[no-untyped-def]
    return _sample(node, "livecore_lossy_events_dropped_total", reason="slow_connection")


async def test_a_stalled_viewer_is_slow_after_a_bounded_number_of_bytes(node_factory: NodeFactory) -> None:
    # With ws_unsent_bytes_max=0 (no bound on what the kernel holds unsent) the send buffer autotunes to megabytes
    # on loopback and takes them all before the node's own buffer sees a slow consumer: 3.7 MB here when tried.
    node = await node_factory(write_buffer_bytes_high=64 * 1024, replay_events_max=20000,
                              chat_display_per_s_max=100000)
    creator = await node.signup()
    room = (await node.create_stream(creator["token"]))["id"]
    fast = await node.ws(room)
    await receive_events(fast)
    stalled = await _stalled_viewer(node, room)
    try:
        published_bytes = 0
        while not _slow_drops(node) and published_bytes < 4 * STALLED_BYTES_MAX:
            for _ in range(20):
                last_seq = await node.plane.publish(room, {"type": "chat", "user": {"id": 1, "name": "x"},
                                                           "text": PAD})
                published_bytes += len(PAD)
            await events_until(fast, lambda got, seq=last_seq: any(e.get("seq") == seq for e in got))
        assert _slow_drops(node) > 0, f"not seen as slow after {published_bytes} bytes"
        assert published_bytes < STALLED_BYTES_MAX, f"seen as slow only after {published_bytes} bytes"
    finally:
        stalled.close()
