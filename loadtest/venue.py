"""Where a run takes place: the server's nodes, its rooms, and who connects to which with what credentials.

For livecore the rooms are streams of benchmark creators and everybody has an account (a few shared by many
viewers); for a Socket.IO peer a room is a name and nobody signs in.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

from loadtest import accounts, media, wire
from loadtest.crowd import Seat
from loadtest.scenario import Scenario
from loadtest.traffic import Senders

VIEWERS_PER_ACCOUNT = 500
GIFTER_COINS = "coins_10000"  # roses cost a coin each: enough for any run
AUCTION_EXTRA_S = 600  # an auction outlasts the sending by this much, so it is open through the drain


@dataclass(frozen=True)
class Venue:
    wire: str
    node_urls: list[str]  # http://host:port of every node
    rooms: list[str]  # room ids (livecore) or names (peers)
    viewer_tokens: list[str | None]
    senders: list[dict[str, list[str | None]]]  # per room: kind -> the tokens that send it
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)  # what ends the broadcasts
    auctions: list[int | None] = field(default_factory=list)  # per room, the auction its bidders bid in

    async def close(self) -> None:
        for close in self.closers:
            await close()

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
                           for kind, tokens in self.senders[room].items()},
                    self.auctions[room] if self.auctions else None)
            for room, room_id in enumerate(self.rooms)
        ]


async def livecore_venue(node_urls: list[str], scenario: Scenario, run_tag: str) -> Venue:
    """Accounts and one stream per room on the first node (the others share its database); live rooms for gifts
    and media, with a publisher each and gifters who bought coins."""
    base = node_urls[0]
    viewer_accounts = max(1, math.ceil(scenario.viewers / VIEWERS_PER_ACCOUNT))
    session = aiohttp.ClientSession()
    closers: list[Callable[[], Awaitable[None]]] = [session.close]

    async def token(name: str) -> str:
        return await accounts.account_token(session, base, f"lt{run_tag}{name}")

    viewers = await asyncio.gather(*(token(f"v{n}") for n in range(viewer_accounts)))
    rooms, senders, auctions = [], [], []
    for room in range(scenario.rooms):
        creator = await token(f"c{room}")
        chatters = await asyncio.gather(*(token(f"r{room}p{n}") for n in range(scenario.chatters)))
        stream = await accounts.open_stream(session, base, creator, f"load test room {room}")
        rooms.append(str(stream["id"]))
        kinds: dict[str, list[str | None]] = {"chat": list(chatters), "like": list(chatters), "must": [creator]}
        if scenario.live:
            broadcast = await media.go_live(session, base, str(stream["id"]), stream["stream_key"])
            closers.insert(0, lambda b=broadcast: media.end_broadcast(session, base, b))
            await accounts.wait_live(session, base, str(stream["id"]))
        if scenario.bids_per_s > 0:
            bidders = await asyncio.gather(*(token(f"r{room}b{n}") for n in range(scenario.bidders)))
            await asyncio.gather(*(accounts.save_test_card(session, base, b) for b in bidders))
            auctions.append(await accounts.open_auction(session, base, creator, str(stream["id"]),
                                                        scenario.duration_s + AUCTION_EXTRA_S))
            kinds["bid"] = list(bidders)
        if scenario.gifts_per_s > 0:
            gifters = await asyncio.gather(*(token(f"r{room}g{n}") for n in range(scenario.gifters)))
            await asyncio.gather(*(accounts.buy_coins(session, base, g, GIFTER_COINS) for g in gifters))
            kinds["gift"] = list(gifters)
        senders.append(kinds)
    return Venue(scenario.wire, node_urls, rooms, list(viewers), senders, closers, auctions)


def peer_venue(node_urls: list[str], scenario: Scenario) -> Venue:
    senders: dict[str, list[str | None]] = {kind: [None] for kind in ("chat", "like", "gift", "bid", "must")}
    return Venue(wire.SOCKETIO, node_urls, [f"room{n}" for n in range(scenario.rooms)], [None],
                 [senders for _ in range(scenario.rooms)])
