"""A room's WebRTC viewer limit counts the viewers of every node, and a node that stops refreshing (killed) holds no
slot past `media_owner_ttl_ms` of the clock."""

from __future__ import annotations

import json

from mediapeers import publish, wait_for, watch

from livecore.clock import Clock, ManualClock
from livecore.media import MEDIA
from livecore.tasks import stop_tasks


async def _refused(viewer) -> None:  # type: ignore[no-untyped-def]
    assert viewer.status == 503, viewer.body
    problem = json.loads(viewer.body)
    assert problem["type"] == "livecore:over-capacity" and problem["limit"] == "media_viewers_per_room_max"


async def test_the_room_limit_counts_viewers_on_every_node(node_factory, http):  # type: ignore[no-untyped-def]
    clock = ManualClock(Clock().now_ms())
    owner = await node_factory(clock, media_viewers_per_room_max=2)
    other = await node_factory(clock, media_viewers_per_room_max=2)
    account = await owner.signup(roles=["creator"])
    stream = await owner.create_stream(account["token"], live=False)
    publisher = await publish(http, owner.url, stream)
    assert publisher.status == 201
    await wait_for(lambda: owner.app[MEDIA].rooms[stream["id"]].connected, 15)
    viewers = []
    try:
        viewers.append(await watch(http, owner.url, stream["id"], decode=False))
        viewers.append(await watch(http, other.url, stream["id"], decode=False))  # relayed: one viewer on each
        assert [v.status for v in viewers] == [201, 201], [v.body for v in viewers]
        for node in (owner, other):  # the relay to the other node is not a viewer: two, not three
            third = await watch(http, node.url, stream["id"], decode=False)
            await _refused(third)
        async with http.delete(f"{owner.url}{viewers[0].location}") as response:
            assert response.status == 200
        viewers.append(await watch(http, other.url, stream["id"], decode=False))  # the freed slot, on another node
        assert viewers[-1].status == 201, viewers[-1].body
        await _refused(await watch(http, owner.url, stream["id"], decode=False))

        # The other node dies with two viewers: it stops refreshing its share (its upkeep is gone).
        await stop_tasks(other.app[MEDIA]._upkeep)
        await _refused(await watch(http, owner.url, stream["id"], decode=False))  # its share still counts ...
        clock.advance(owner.node.settings.media_owner_ttl_ms / 1000 + 1)
        late = await watch(http, owner.url, stream["id"], decode=False)  # ... until it is older than the TTL
        viewers.append(late)
        assert late.status == 201, late.body
    finally:
        for viewer in viewers:
            await viewer.close()
        await publisher.pc.close()
