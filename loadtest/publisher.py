"""The publishing side: a few chat connections and the creator's connection, sending on a fixed schedule.

Publish number i is due at start + i / rate; a late loop catches up by sending everything due rather than
drifting, so the input rate is the one asked for as long as the loop keeps up (its worst lag is reported).
Every `must_every`-th publish is a must-deliver probe from the creator: a slow-mode command, which the room
answers with a `moderation` event to every viewer.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgpack
import orjson

from loadtest import wsframe
from loadtest.connection import ClientConnection, open_connection
from loadtest.viewer import chat_text
from signaling import protocol

PROBE_COMMAND = {"type": "slow_mode", "seconds": 0}


@dataclass
class PublishCounts:
    chat_sent: int = 0
    probes_sent: int = 0
    lag_max_s: float = 0.0  # how far behind its schedule the loop ever fell
    errors: Counter[str] = field(default_factory=Counter)  # "command/code" of error events sent back
    error_details: dict[str, str] = field(default_factory=dict)


def due_count(elapsed_s: float, rate_per_s: float, total: int) -> int:
    """How many of `total` publishes, the i-th due at i / rate, are due `elapsed_s` after the start."""
    if elapsed_s < 0:
        return 0
    return min(total, int(elapsed_s * rate_per_s) + 1)


def is_probe(index: int, must_every: int) -> bool:
    return must_every > 0 and index % must_every == must_every - 1


class Publisher:
    """The chat publishers and the creator, connected to one room."""

    def __init__(self, chat_urls: list[str], creator_url: str, subprotocol: str) -> None:
        self.chat_urls = chat_urls
        self.creator_url = creator_url
        self.subprotocol = subprotocol
        self.opcode = protocol.frame_opcode(subprotocol)
        self.chat_connections: list[ClientConnection] = []
        self.creator: ClientConnection | None = None
        self.counts = PublishCounts()
        self.next_index = 0

    async def connect(self) -> None:
        for url in self.chat_urls:
            connection, _ = await open_connection(url, (self.subprotocol,), self._on_message)
            self.chat_connections.append(connection)
        self.creator, _ = await open_connection(self.creator_url, (self.subprotocol,), self._on_message)

    async def publish(self, rate_per_s: float, duration_s: float, must_every: int) -> PublishCounts:
        """Publish `rate_per_s` for `duration_s`; return the counts of this call alone."""
        self.counts = PublishCounts()
        total = round(rate_per_s * duration_s)
        start = time.monotonic()
        sent = 0
        while sent < total:
            now = time.monotonic()
            due = due_count(now - start, rate_per_s, total)
            self.counts.lag_max_s = max(self.counts.lag_max_s, now - (start + (due - 1) / rate_per_s))
            while sent < due:
                self._send(self.next_index, must_every)
                self.next_index += 1
                sent += 1
            if sent < total:
                await asyncio.sleep(max(0.0, start + sent / rate_per_s - time.monotonic()))
        return self.counts

    def close(self) -> None:
        for connection in [*self.chat_connections, *([self.creator] if self.creator else [])]:
            connection.close()

    def _send(self, index: int, must_every: int) -> None:
        if is_probe(index, must_every):
            assert self.creator is not None
            self.creator.send(self.opcode, protocol.encode_command(self.subprotocol, PROBE_COMMAND))
            self.counts.probes_sent += 1
            return
        connection = self.chat_connections[index % len(self.chat_connections)]
        command = {"type": "chat", "text": chat_text(time.time_ns(), index)}
        connection.send(self.opcode, protocol.encode_command(self.subprotocol, command))
        self.counts.chat_sent += 1

    def _on_message(self, opcode: int, payload: bytes, arrived_ns: int, read_ns: int) -> None:
        """Publishers are in the room too; of what they receive only errors matter (rate limits, refusals)."""
        if b"error" not in payload:  # a substring test spares decoding the many frames without one
            return
        events: list[dict[str, Any]] = (
            msgpack.unpackb(payload) if opcode == wsframe.OP_BINARY else orjson.loads(payload)
        )
        for event in events:
            if event.get("type") == "error":
                key = f"{event.get('command')}/{event.get('code')}"
                self.counts.errors[key] += 1
                self.counts.error_details.setdefault(key, str(event.get("detail", ""))[:200])
