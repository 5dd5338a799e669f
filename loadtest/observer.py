"""One watching connection per room and node: which sequence numbers of which class the node actually sent.

Chat above a room's display rate is sampled by each node before it fans out, so what a viewer should receive is
what its node sent, not what was published; the observer, a viewer like the others on the same node, records it.
"""

from __future__ import annotations

from collections import Counter

from loadtest import wire
from loadtest.audience import CLASSES, event_class, expected_between
from loadtest.connection import ClientConnection, open_connection


class Observer:
    """Decodes every frame of one room on one node and keeps each class's sequence numbers in order."""

    def __init__(self, room: int, node: int, url: str, wire_name: str) -> None:
        self.room = room
        self.node = node
        self.url = url
        self.wire = wire_name
        self.seqs: dict[str, list[int]] = {klass: [] for klass in CLASSES}
        self.last_seq = 0
        self.types: Counter[str] = Counter()
        self.connection: ClientConnection | None = None

    async def connect(self) -> None:
        self.connection, _ = await open_connection(self.url, wire.subprotocols(self.wire), self._on_message)
        greeting = wire.greeting(self.wire)
        if greeting is not None:
            self.connection.send(wire.opcode(self.wire), greeting)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()

    @property
    def total(self) -> int:
        return sum(len(seqs) for seqs in self.seqs.values())

    def expected(self, start_seq: int, end_seq: int | None) -> dict[str, int]:
        """Events per class a viewer that saw `start_seq` first and `end_seq` last should have received."""
        return {klass: expected_between(seqs, start_seq, end_seq) for klass, seqs in self.seqs.items()}

    def _on_message(self, opcode: int, payload: bytes, arrived_ns: int, read_ns: int) -> None:
        reply = wire.control_reply(self.wire, payload)
        if reply is not None and self.connection is not None:
            self.connection.send(wire.opcode(self.wire), reply)
        for event in wire.decode_events(self.wire, opcode, payload) or []:
            kind = str(event.get("type"))
            self.types[kind] += 1
            klass, seq = event_class(kind), event.get("seq")
            if klass is not None and isinstance(seq, int) and seq > self.last_seq:
                self.seqs[klass].append(seq)
                self.last_seq = seq
