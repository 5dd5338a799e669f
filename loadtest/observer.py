"""One watching connection per room and node: which sequence numbers of which class the node actually sent.

Chat above a room's display rate is sampled by each node before it fans out, so what a viewer should receive is
what its node sent, not what was published; the observer, a viewer like the others on the same node, records it.
The observers run in a process of their own that does nothing else: a slow observer would lose lossy events
(the node drops them for a connection that falls behind) and make every viewer look as if it got too many. One
whose connection is lost resumes where it was, as a viewer does.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import signal
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

import uvloop

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
        self.epoch = ""
        self.closing = False
        self.resumes = 0

    async def connect(self) -> None:
        url = self.url
        if self.epoch:
            url += f"&since={self.epoch}:{self.last_seq}"
            self.resumes += 1
        self.connection, _ = await open_connection(url, wire.subprotocols(self.wire), self._on_message)
        self.connection.closed.add_done_callback(self._on_closed)
        greeting = wire.greeting(self.wire)
        if greeting is not None:
            self.connection.send(wire.opcode(self.wire), greeting)

    def close(self) -> None:
        self.closing = True
        if self.connection is not None:
            self.connection.close()

    def _on_closed(self, closed: asyncio.Future[int]) -> None:
        if not self.closing:
            asyncio.get_running_loop().create_task(self.connect())

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
            if kind in ("snapshot", "reset"):
                self.epoch = str(event.get("epoch", self.epoch))
            klass, seq = event_class(kind), event.get("seq")
            if klass is not None and isinstance(seq, int) and seq > self.last_seq:
                self.seqs[klass].append(seq)
                self.last_seq = seq


def run_observers(pipe: Connection, places: list[tuple[int, int, str]], wire_name: str) -> None:
    """Process entry point: connect one observer per (room, node, url), say "ready", then on "report" send each
    one's (room, node, seqs, resumes) and stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    async def main() -> None:
        observers = [Observer(room, node, url, wire_name) for room, node, url in places]
        for observer in observers:
            await observer.connect()
        pipe.send("ready")
        await asyncio.to_thread(pipe.recv)
        for observer in observers:
            observer.close()
        pipe.send([(o.room, o.node, o.seqs, o.resumes) for o in observers])

    uvloop.run(main())


class ObserverProcess:
    """The observers' process, seen from the run."""

    def __init__(self, places: list[tuple[int, int, str]], wire_name: str) -> None:
        self.places = places
        self.wire = wire_name
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=run_observers, args=(child, places, wire_name), daemon=True)
        self.process.start()
        child.close()

    async def ready(self) -> None:
        answer = await asyncio.to_thread(self.pipe.recv)
        if answer != "ready":
            raise RuntimeError(f"the observers did not start: {answer!r}")

    async def collect(self) -> list[Observer]:
        """Stop the observers and rebuild them here with what they recorded."""
        self.pipe.send("report")
        found: list[Any] = await asyncio.to_thread(self.pipe.recv)
        observers = []
        for (room, node, seqs, resumes), (_, _, url) in zip(found, self.places, strict=True):
            observer = Observer(room, node, url, self.wire)
            observer.seqs, observer.resumes = seqs, resumes
            observers.append(observer)
        return observers

    def close(self) -> None:
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
        self.pipe.close()
