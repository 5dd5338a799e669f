"""Where a run takes place: the server's nodes, its rooms, and who connects to which with what credentials.

For livecore the rooms are streams of benchmark creators and everybody has an account (a few shared by many
viewers); for a Socket.IO peer a room is a name and nobody signs in.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

import aiohttp

from loadtest import accounts, wire
from loadtest.crowd import Seat
from loadtest.scenario import Scenario
from loadtest.traffic import Senders

VIEWERS_PER_ACCOUNT = 500


@dataclass(frozen=True)
class Venue:
    wire: str
    node_urls: list[str]  # http://host:port of every node
    rooms: list[str]  # room ids (livecore) or names (peers)
    viewer_tokens: list[str | None]
    senders: list[dict[str, list[str | None]]]  # per room: kind -> the tokens that send it

    def ws_url(self, node: int) -> str:
        return self.node_urls[node].replace("http://", "ws://", 1).replace("https://", "wss://", 1)

    def seats(self, viewers: int) -> list[Seat]:
        """Viewers dealt over rooms, and within a room over nodes, round robin."""
        seats = []
        for number in range(viewers):
            room = number % len(self.rooms)
            node = (number // len(self.rooms)) % len(self.node_urls)
            token = self.viewer_tokens[number % len(self.viewer_tokens)]
            seats.append(Seat(room, node, self.ws_url(node), self.rooms[room], token))
        return seats

    def observer_urls(self) -> list[tuple[int, int, str]]:
        """(room, node, url) of one observing connection per room per node."""
        token = self.viewer_tokens[0]
        return [
            (room, node, wire.room_url(self.ws_url(node), self.wire, room_id, token))
            for room, room_id in enumerate(self.rooms) for node in range(len(self.node_urls))
        ]

    def sender_lists(self) -> list[Senders]:
        """Senders connect to the first node; the others get the events over the bus."""
        return [
            Senders(room, {kind: [wire.room_url(self.ws_url(0), self.wire, room_id, token) for token in tokens]
                           for kind, tokens in self.senders[room].items()})
            for room, room_id in enumerate(self.rooms)
        ]


async def livecore_venue(node_urls: list[str], scenario: Scenario, run_tag: str) -> Venue:
    """Accounts and one stream per room on the first node (the others share its database)."""
    base = node_urls[0]
    viewer_accounts = max(1, math.ceil(scenario.viewers / VIEWERS_PER_ACCOUNT))
    async with aiohttp.ClientSession() as session:
        async def token(name: str) -> str:
            return await accounts.account_token(session, base, f"lt{run_tag}{name}")

        viewers = await asyncio.gather(*(token(f"v{n}") for n in range(viewer_accounts)))
        rooms, senders = [], []
        for room in range(scenario.rooms):
            creator = await token(f"c{room}")
            chatters = await asyncio.gather(*(token(f"r{room}p{n}") for n in range(scenario.chatters)))
            rooms.append(await accounts.create_stream(session, base, creator, f"load test room {room}"))
            senders.append({"chat": list(chatters), "like": list(chatters), "must": [creator]})
    return Venue(scenario.wire, node_urls, rooms, list(viewers), senders)


def peer_venue(node_urls: list[str], scenario: Scenario) -> Venue:
    senders: dict[str, list[str | None]] = {"chat": [None], "like": [None], "gift": [None], "must": [None]}
    return Venue(wire.SOCKETIO, node_urls, [f"room{n}" for n in range(scenario.rooms)], [None],
                 [senders for _ in range(scenario.rooms)])
