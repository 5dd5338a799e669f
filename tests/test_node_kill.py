"""A node killed with -9 while viewers on both nodes of a cluster (behind nginx) receive must-deliver events: the
dead node's viewers reconnect through nginx to the live node and resume from their last (epoch, seq), and every
viewer ends with every event, in order, without duplicates and without a reset."""

from __future__ import annotations

import time

import aiohttp
from lbcluster import StartCluster
from roomclient import receive_events, send

from signaling import protocol

EVENTS = 30
KILLED_AFTER = 10  # events sent before the kill
WAIT_S_MAX = 30.0
RECONNECTS_MAX = 20


def _timeouts(events: list[dict]) -> list[int]:
    return [e["until_ms"] for e in events if e["type"] == "moderation" and e["action"] == "timeout"]


class Viewer:
    """One room socket that, as the room client does, reconnects with ?since= whenever it is closed."""

    def __init__(self, http: aiohttp.ClientSession, ws_url: str, socket: aiohttp.ClientWebSocketResponse,
                 snapshot: dict) -> None:
        self.http, self.ws_url, self.socket = http, ws_url, socket
        self.position = (snapshot["epoch"], snapshot["seq"])
        self.events: list[dict] = []
        self.reconnects = 0
        self.resumed_after_s: list[float] = []

    async def follow(self, count: int) -> None:
        """Read until `count` timeouts arrived, reconnecting through nginx when the serving node goes away."""
        while len(_timeouts(self.events)) < count:
            try:
                events = await receive_events(self.socket, WAIT_S_MAX)
            except AssertionError:  # closed: its node is gone
                await self._resume()
                continue
            for event in events:
                if event["type"] in ("snapshot", "reset"):
                    self.position = (event["epoch"], event["seq"])
                elif "seq" in event:
                    self.position = (self.position[0], event["seq"])
            self.events.extend(events)

    async def _resume(self) -> None:
        lost_at = time.monotonic()
        for _ in range(RECONNECTS_MAX):
            self.reconnects += 1
            try:
                self.socket = await self.http.ws_connect(
                    self.ws_url, params={"since": f"{self.position[0]}:{self.position[1]}"},
                    protocols=[protocol.JSON])
            except aiohttp.ClientError:
                continue  # nginx has not given up on the dead node yet
            self.resumed_after_s.append(time.monotonic() - lost_at)
            return
        raise AssertionError("could not reconnect")


async def test_viewers_of_a_node_killed_with_9_resume_on_the_other_with_every_must_deliver_event(
    start_cluster: StartCluster,
) -> None:
    cluster = await start_cluster()
    doomed, survivor = cluster.nodes
    creator, target = await cluster.signup(), await cluster.signup()
    room = (await cluster.create_stream(creator["token"]))["id"]
    ws_url = f"{cluster.url.replace('http', 'ws')}/ws/rooms/{room}"
    viewers: dict[str, list[Viewer]] = {doomed.node_id: [], survivor.node_id: []}
    for node in (doomed, survivor, doomed, survivor):
        await cluster.steer_next_request_to(node)
        socket = await cluster.http.ws_connect(ws_url, protocols=[protocol.JSON])
        snapshot = (await receive_events(socket))[0]
        viewers[node.node_id].append(Viewer(cluster.http, ws_url, socket, snapshot))
    everyone = [*viewers[doomed.node_id], *viewers[survivor.node_id]]
    moderator_url = f"{survivor.url.replace('http', 'ws')}/ws/rooms/{room}"
    moderator = await cluster.http.ws_connect(moderator_url, params={"token": creator["token"]},
                                              protocols=[protocol.JSON])
    reference = Viewer(cluster.http, moderator_url, moderator, (await receive_events(moderator))[0])

    async def time_out(i: int) -> None:  # a must-deliver moderation event, named by its until_ms
        await send(moderator, {"type": "timeout", "user_id": target["id"], "seconds": i + 1})

    for i in range(KILLED_AFTER):
        await time_out(i)
    for viewer in everyone:  # everyone is receiving when the node dies
        await viewer.follow(1)
    doomed.kill()
    for i in range(KILLED_AFTER, EVENTS):
        await time_out(i)
    await reference.follow(EVENTS)
    for viewer in everyone:
        await viewer.follow(EVENTS)

    sent = _timeouts(reference.events)
    assert len(set(sent)) == EVENTS and sent == sorted(sent), sent
    for viewer in everyone:
        assert _timeouts(viewer.events) == sent  # every one, in order, none twice
        assert not [e for e in viewer.events if e["type"] == "reset"], viewer.events
        seqs = [e["seq"] for e in viewer.events if "seq" in e and e["type"] not in ("snapshot", "reset")]
        assert seqs == sorted(set(seqs)), seqs
    for viewer in viewers[doomed.node_id]:
        assert viewer.reconnects >= 1
        print(f"a viewer of the killed node resumed {viewer.resumed_after_s[-1]:.2f} s after its socket closed")
    for viewer in viewers[survivor.node_id]:
        assert viewer.reconnects == 0
