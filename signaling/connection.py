"""One viewer's WebSocket as the fan-out sees it: shared frames written straight to the transport.

A fast connection gets the room's already-framed bytes with one `transport.write`. A connection whose socket
buffer is above `write_buffer_bytes_high` is slow: it loses lossy events and queues must-deliver ones, and when
more than `backlog_events_max` are queued it is closed with CLOSE_SLOW_CONSUMER so the client resumes.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, field
from typing import Any

from signaling import protocol
from signaling.metrics import SignalingMetrics

log = logging.getLogger("livecore.connection")

SLOW_CLOSE_GRACE_S = 5.0  # how long a closing slow consumer may take to read its close frame
TCP_NOTSENT_LOWAT = getattr(socket, "TCP_NOTSENT_LOWAT", 25)  # Linux's value where the module lacks it


def limit_unsent(transport: asyncio.Transport, unsent_bytes_max: int) -> None:
    """Let the kernel hold at most about `unsent_bytes_max` bytes this connection has not sent yet (TCP_NOTSENT_LOWAT).

    Without it the kernel takes what a stalled viewer cannot receive into a send buffer that autotunes to
    megabytes (tcp_wmem's maximum, 4 MB here; 3.7 MB of chat went in before anything was seen in
    tests/test_slow_consumer.py), minutes of a room's chat, before the node's own buffer grows and
    `write_buffer_bytes_high` sees a slow consumer; every frame meanwhile costs one send of its own. With it, what
    the viewer cannot take waits in the transport's buffer: counted against `write_buffer_bytes_high`, and written
    in one send when the viewer catches up.
    """
    sock = transport.get_extra_info("socket")
    if unsent_bytes_max and sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, TCP_NOTSENT_LOWAT, unsent_bytes_max)


@dataclass(frozen=True)
class Viewer:
    """Who is on a connection; `user_id` 0 is an anonymous viewer."""

    user_id: int
    name: str
    is_moderator: bool = False


@dataclass(eq=False)
class Connection:
    transport: asyncio.Transport
    subprotocol: str
    viewer: Viewer
    metrics: SignalingMetrics
    write_buffer_bytes_high: int
    backlog_events_max: int
    joining: bool = True
    closed: bool = False
    last_seq: int = 0
    join_buffer: list[dict[str, Any]] = field(default_factory=list)
    backlog: list[dict[str, Any]] = field(default_factory=list)

    def deliver(self, batch: Batch) -> int:
        """Offer one batch of room events; returns how many events went out as the shared frame."""
        if self.closed:
            return 0
        if self.joining:
            self.join_buffer.extend(batch.events)
            if len(self.join_buffer) > self.backlog_events_max:
                self._close_slow()
            return 0
        if batch.first_seq and batch.first_seq <= self.last_seq:
            # A rare overlap with this connection's join replay: this batch cannot be shared.
            self._write_events([e for e in batch.events if e.get("seq", self.last_seq + 1) > self.last_seq])
            self.last_seq = max(self.last_seq, batch.last_seq)
            return 0
        if self.backlog or self.transport.get_write_buffer_size() > self.write_buffer_bytes_high:
            self._queue_while_slow(batch)
            return 0
        if self.transport.is_closing():
            self.closed = True
            return 0
        self.transport.write(batch.frame(self.subprotocol))
        self.last_seq = batch.last_seq or self.last_seq
        return len(batch.events)

    def send_private(self, events: list[dict[str, Any]]) -> None:
        """Events for this connection alone (errors, pongs); they queue like must-deliver ones when slow."""
        if self.closed:
            return
        if self.backlog or self._buffered_bytes() > self.write_buffer_bytes_high:
            self.backlog.extend(events)
            self._close_if_overflowing()
            return
        self._write_events(events)

    def finish_join(self, first: list[dict[str, Any]], position_seq: int) -> None:
        """Send the snapshot or replay, then whatever arrived meanwhile that is newer than it."""
        self.joining = False
        self.last_seq = position_seq
        pending = [e for e in self.join_buffer if e.get("seq", position_seq + 1) > position_seq]
        self.join_buffer = []
        self._write_events(first + pending)
        self._advance(first + pending)
        self.last_seq = max(self.last_seq, position_seq)  # a replay cut short by the window ends below it

    def restart(self, first: list[dict[str, Any]], seq: int) -> None:
        """The room goes on from `seq` of a new epoch: send `first` (a reset and a fresh snapshot) after what is
        queued, and take the new epoch's events after `seq`. A joining connection starts its join over instead."""
        if self.closed:
            return
        if self.joining:
            self.join_buffer = []
            return
        self.send_private(first)
        self.last_seq = seq

    def drain(self) -> None:
        """Called on every tick while slow: flush the backlog once the socket has room again."""
        if self.closed or not self.backlog or self._buffered_bytes() > self.write_buffer_bytes_high:
            return
        backlog, self.backlog = self.backlog, []
        self._write_events(backlog)
        self._advance(backlog)

    def close(self, code: int, reason: str) -> None:
        """Send a close frame after what is buffered and drop the connection; abort if it never drains."""
        if self.closed:
            return
        self.closed = True
        if not self.transport.is_closing():
            self.transport.write(protocol.close_frame(code, reason))
            self.transport.close()
            asyncio.get_running_loop().call_later(SLOW_CLOSE_GRACE_S, self.transport.abort)

    def _queue_while_slow(self, batch: Batch) -> None:
        kept = [e for e in batch.events if protocol.is_must_deliver(e)]
        dropped = len(batch.events) - len(kept)
        if dropped:
            self.metrics.lossy_dropped.labels(reason="slow_connection").inc(dropped)
        self.backlog.extend(kept)
        self.last_seq = batch.last_seq or self.last_seq
        self._close_if_overflowing()

    def _close_if_overflowing(self) -> None:
        if len(self.backlog) > self.backlog_events_max:
            self._close_slow()

    def _close_slow(self) -> None:
        self.metrics.slow_closes.inc()
        log.info("closing slow consumer user=%d backlog=%d", self.viewer.user_id, len(self.backlog))
        self.backlog = []
        self.join_buffer = []
        self.close(protocol.CLOSE_SLOW_CONSUMER, "slow consumer: resume with since")

    def _write_events(self, events: list[dict[str, Any]]) -> None:
        """Write events framed for this connection alone (join, drain, private); counted here."""
        if not events:
            return
        if self.transport.is_closing():
            self.closed = True
            return
        self.transport.write(framed(self.subprotocol, events))
        self.metrics.events_out.inc(len(events))

    def _advance(self, events: list[dict[str, Any]]) -> None:
        # The last event with a seq is the newest sent (a restart's snapshot, at seq 0 of its epoch, included).
        for event in reversed(events):
            seq = event.get("seq")
            if seq is not None:
                self.last_seq = seq
                return

    def _buffered_bytes(self) -> int:
        return self.transport.get_write_buffer_size()


class Batch:
    """Room events flushed together in one tick, encoded and framed at most once per subprotocol."""

    __slots__ = ("_frames", "events", "first_seq", "last_seq")

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        seqs = [e["seq"] for e in events if "seq" in e]
        self.first_seq: int = seqs[0] if seqs else 0
        self.last_seq: int = seqs[-1] if seqs else 0
        self._frames: dict[str, bytes] = {}

    @property
    def frames_built(self) -> int:
        return len(self._frames)

    def frame(self, subprotocol: str) -> bytes:
        frame = self._frames.get(subprotocol)
        if frame is None:
            frame = self._frames[subprotocol] = framed(subprotocol, self.events)
        return frame


def framed(subprotocol: str, events: list[dict[str, Any]]) -> bytes:
    """Events encoded and framed once, ready for any number of connections of that subprotocol."""
    return protocol.ws_frame(protocol.frame_opcode(subprotocol), protocol.encode_events(subprotocol, events))
