"""The senders of a run: per room, chatters, likers, gifters and the creator, each kind at its own rate.

Send number i of a kind is due at start + i / rate (loadtest.publisher.due_count), so the input rate is the one
asked for as long as the loop keeps up. A gift's commit latency runs from sending it to the private `wallet`
answer that says it is booked. Every error event sent back to a sender is counted by its code.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field

from loadtest import wire
from loadtest.connection import ClientConnection, open_connection
from loadtest.histogram import LatencyHistogram
from loadtest.publisher import due_count

KINDS = ("chat", "like", "gift", "bid", "must")
TICK_S = 0.005
MUST_COMMAND = {"type": "slow_mode", "seconds": 0}  # answered by a must-deliver `moderation` event to everyone
GIFT_ID = "rose"
BID_START_CENTS = 2000  # the auction's start: above the floor of the product the tool makes
BID_STEP_CENTS = 100  # the "dollar" increments: bid i offers start + (i + 1) steps, always enough if in order


def chat_text(index: int) -> str:
    """A 40-byte chat message, the size the issue's comparison uses."""
    return f"load test chat message number {index:010d}"


@dataclass(frozen=True)
class Rates:
    """Sends per second per room, by kind."""

    chat: float = 0.0
    like: float = 0.0
    gift: float = 0.0
    bid: float = 0.0
    must: float = 0.0

    def of(self, kind: str) -> float:
        return float(getattr(self, kind))


@dataclass
class TrafficCounts:
    sent: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # "command/code" of the error events sent back
    error_details: dict[str, str] = field(default_factory=dict)
    commit_ms: LatencyHistogram = field(default_factory=LatencyHistogram)  # gifts: send to `wallet`
    bid_commit_ms: LatencyHistogram = field(default_factory=LatencyHistogram)  # bids: send to the `bid` answer
    lag_max_s: float = 0.0


@dataclass(frozen=True)
class Senders:
    """One room's sending connections: URLs per kind (the creator sends `must`)."""

    room: int
    urls: dict[str, list[str]]
    auction_id: int | None = None  # the auction bidders bid in


class RoomTraffic:
    def __init__(self, senders: Senders, wire_name: str, counts: TrafficCounts) -> None:
        self.senders = senders
        self.wire = wire_name
        self.counts = counts
        self.connections: dict[str, list[ClientConnection]] = {}
        self.in_flight: dict[str, tuple[str, float]] = {}  # idempotency key -> (kind, sent at)

    async def connect(self) -> None:
        for kind, urls in self.senders.urls.items():
            self.connections[kind] = []
            for url in urls:
                connection, _ = await open_connection(url, wire.subprotocols(self.wire), self._on_message)
                greeting = wire.greeting(self.wire)
                if greeting is not None:
                    connection.send(wire.opcode(self.wire), greeting)
                self.connections[kind].append(connection)
        if self.wire == wire.SOCKETIO:
            await asyncio.sleep(0.2)  # the Engine.IO open and Socket.IO connect go round first

    def send(self, kind: str, index: int) -> None:
        pool = self.connections[kind]
        connection = pool[index % len(pool)]
        if kind == "chat":
            command = {"type": "chat", "text": chat_text(index)}
        elif kind == "like":
            command = {"type": "like", "count": 1}
        elif kind == "gift":
            key = secrets.token_hex(8)
            self.in_flight[key] = (kind, time.monotonic())
            command = {"type": "gift", "gift_id": GIFT_ID, "idempotency_key": key}
        elif kind == "bid" and self.wire != wire.SOCKETIO:
            key = secrets.token_hex(8)
            self.in_flight[key] = (kind, time.monotonic())
            command = {"type": "bid", "auction_id": self.senders.auction_id, "idempotency_key": key,
                       "amount_cents": BID_START_CENTS + BID_STEP_CENTS * (index + 1)}
        elif kind == "bid":
            command = {"type": "auction", "action": "bid", "amount_cents": BID_START_CENTS + BID_STEP_CENTS * index}
        elif self.wire == wire.SOCKETIO:
            command = {"type": "moderation", "action": "slow_mode", "seconds": 0}
        else:
            command = MUST_COMMAND
        connection.send(wire.opcode(self.wire), wire.encode_command(self.wire, command))
        self.counts.sent[kind] += 1

    def close(self) -> None:
        for pool in self.connections.values():
            for connection in pool:
                connection.close()

    def _on_message(self, opcode: int, payload: bytes, arrived_ns: int, read_ns: int) -> None:
        if self.wire == wire.SOCKETIO or not (b"error" in payload or b"wallet" in payload or b"bid" in payload):
            return  # senders sit in the room too; only their private answers matter here
        for event in wire.decode_events(self.wire, opcode, payload) or []:
            kind = event.get("type")
            if kind == "error":
                key = f"{event.get('command')}/{event.get('code')}"
                self.counts.errors[key] += 1
                self.counts.error_details.setdefault(key, str(event.get("detail", ""))[:200])
            elif kind in ("wallet", "bid"):
                sent = self.in_flight.pop(str(event.get("idempotency_key")), None)
                if sent is not None:
                    histogram = self.counts.commit_ms if sent[0] == "gift" else self.counts.bid_commit_ms
                    histogram.add_ms(1000 * (time.monotonic() - sent[1]))


class Traffic:
    """Every room's senders on one schedule."""

    def __init__(self, senders: list[Senders], rates: Rates, wire_name: str) -> None:
        self.rates = rates
        self.counts = TrafficCounts()
        self.rooms = [RoomTraffic(s, wire_name, self.counts) for s in senders]

    async def connect(self) -> None:
        await asyncio.gather(*(room.connect() for room in self.rooms))

    async def run(self, duration_s: float) -> TrafficCounts:
        kinds = [kind for kind in KINDS if self.rates.of(kind) > 0]
        totals = {kind: round(self.rates.of(kind) * duration_s) for kind in kinds}
        sent = dict.fromkeys(kinds, 0)
        start = time.monotonic()
        while any(sent[kind] < totals[kind] for kind in kinds):
            elapsed = time.monotonic() - start
            for kind in kinds:
                due = due_count(elapsed, self.rates.of(kind), totals[kind])
                if due > sent[kind]:
                    self.counts.lag_max_s = max(self.counts.lag_max_s, elapsed - (due - 1) / self.rates.of(kind))
                while sent[kind] < due:
                    for room in self.rooms:
                        room.send(kind, sent[kind])
                    sent[kind] += 1
            await asyncio.sleep(TICK_S)
        return self.counts

    def close(self) -> None:
        for room in self.rooms:
            room.close()
