"""Requests between nodes (livecore/media/cluster.py): session ids that name their node, and the signed node mark
that makes a WHEP offer a relay's, which only the owner answers and which a client cannot forge."""

from __future__ import annotations

import orjson
import pytest
from mediapeers import new_pc, publish, wait_for

from livecore.media import MEDIA
from livecore.media.cluster import NODE_HEADER, PROOF_HEADER, new_session_id, session_node


@pytest.mark.parametrize("node_id", ["127.0.0.1-8080", "media-7.eu-west.internal", "nœud 3/ä"])
def test_a_session_id_names_its_node(node_id: str) -> None:
    first, second = new_session_id(node_id), new_session_id(node_id)
    assert session_node(first) == session_node(second) == node_id
    assert first != second and "/" not in first and "?" not in first


@pytest.mark.parametrize("session", ["", "plain-random-id", ".abc", "abc.", "a.b", "@@@.xyz", "x" * 500 + ".y"])
def test_an_id_that_names_no_node_is_none(session: str) -> None:
    assert session_node(session) is None


async def _offer() -> str:
    pc = new_pc()
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def _whep(http, url: str, stream_id: int, mark: dict[str, str]) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    async with http.post(f"{url}/whep/{stream_id}", data=await _offer(),
                         headers={"Content-Type": "application/sdp", **mark}) as response:
        body = await response.read()
        return response.status, orjson.loads(body) if response.status != 201 else {}


async def test_only_a_node_with_the_shared_secret_makes_a_relay_offer(node_factory, http):  # type: ignore[no-untyped-def]
    owner = await node_factory(media_viewers_per_room_max=0)  # every viewer's offer is over capacity
    other = await node_factory()
    account = await owner.signup(roles=["creator"])
    stream = await owner.create_stream(account["token"], live=False)
    publisher = await publish(http, owner.url, stream)
    tokens = owner.node.tokens
    other_id, owner_id = other.node.settings.node_id, owner.node.settings.node_id
    try:
        await wait_for(lambda: owner.app[MEDIA].rooms[stream["id"]].connected, 10)
        forged = {NODE_HEADER: other_id, PROOF_HEADER: "0" * 64}
        status, problem = await _whep(http, owner.url, stream["id"], forged)
        assert (status, problem["type"]) == (503, "livecore:over-capacity")  # a viewer's offer, capacity and all

        relay = {NODE_HEADER: other_id, PROOF_HEADER: tokens.node_proof(other_id)}
        status, _ = await _whep(http, owner.url, stream["id"], relay)
        assert status == 201  # a relay is one viewer for all of its node's viewers: no per-room limit

        status, problem = await _whep(http, other.url, stream["id"], {
            NODE_HEADER: owner_id, PROOF_HEADER: tokens.node_proof(owner_id)})
        assert (status, problem["type"]) == (409, "livecore:not-the-owner")  # relays pull from owners only

        itself = {NODE_HEADER: owner_id, PROOF_HEADER: tokens.node_proof(owner_id)}
        status, problem = await _whep(http, owner.url, stream["id"], itself)
        assert (status, problem["type"]) == (508, "livecore:relay-loop")
    finally:
        await publisher.pc.close()
