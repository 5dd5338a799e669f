"""Several nodes: a viewer on a node that does not own the room is served through the owner."""

from __future__ import annotations

from mediapeers import publish, wait_for, watch

from livecore.media import MEDIA


async def test_viewer_on_second_node_receives_stream_owned_by_first(node_factory, http):  # type: ignore[no-untyped-def]
    owner = await node_factory()
    other = await node_factory()
    account = await owner.signup(roles=["creator"])
    stream = await owner.create_stream(account["token"], live=False)
    publisher = await publish(http, owner.url, stream)
    assert publisher.status == 201
    await wait_for(lambda: owner.app[MEDIA].rooms[stream["id"]].connected, 10)
    viewers = [await watch(http, other.url, stream["id"]) for _ in range(2)]
    try:
        assert all(v.status == 201 for v in viewers), [v.body for v in viewers]
        await wait_for(lambda: all(len(v.video_pts) >= 10 for v in viewers), 15)
        relay = other.app[MEDIA].rooms[stream["id"]]
        assert relay.relay_of == owner.node.settings.node_id
        assert len(owner.app[MEDIA].rooms[stream["id"]].viewers) == 1  # pulled once for both viewers
        for viewer in viewers:
            assert viewer.video_pts == sorted(viewer.video_pts)
        second = await publish(http, other.url, stream)
        assert second.status == 409
    finally:
        for viewer in viewers:
            await viewer.close()
        await publisher.pc.close()
