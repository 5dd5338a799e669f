"""A client that stops reading loses lossy events first, then is closed with CLOSE_SLOW_CONSUMER and resumes."""

from __future__ import annotations

import aiohttp
from livenode import NodeFactory
from roomclient import events_until, receive_events

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
