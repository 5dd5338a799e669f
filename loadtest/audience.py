"""What each viewer of a run received, kept so every published event can be accounted for per viewer.

A viewer knows where it started (its snapshot's `seq`) and where it stopped (its last `seq` when it left, or the
room's end); the room's observer knows which sequence numbers the node actually sent and of which class. The
parent then reads each viewer's expected count per class off the observer's list, and what it did not deliver is
lost. Duplicates and ordering violations are told apart with a short memory of the last sequence numbers seen.
Latency (server `ts` to the kernel's receive time) is read from one frame in `sample_every_frames` per viewer;
msgpack frames of only chat and probes between samples are counted without decoding (loadtest.census).
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from loadtest import wire, wsframe
from loadtest.census import census
from loadtest.histogram import LatencyHistogram

CHAT, LIKE, GIFT, BID, MUST = "chat", "like", "gift", "bid", "must"
CLASSES = (CHAT, LIKE, GIFT, BID, MUST)
_CLASS_OF = {
    "chat": CHAT, "like": LIKE, "gift": GIFT, "gift_end": GIFT, "auction": BID,
    "moderation": MUST, "stream": MUST, "product_pinned": MUST,
}
RECENT_SEQ_MAX = 256  # sequence numbers each viewer remembers, to tell a duplicate from a late event


def event_class(kind: str) -> str | None:
    """The delivery class a room event is measured in; None for what is not a published event (snapshots,
    counts, private replies)."""
    return _CLASS_OF.get(kind)


@dataclass
class Tally:
    """Everything one worker's viewers received, merged by the parent."""

    frames: int = 0
    payload_bytes: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    undecodable: int = 0
    # Messages read together with a later one: TCP gave them the later one's arrival time, so their latency is an
    # upper bound (the viewer process was slower to read than the server was to send).
    read_behind: int = 0
    resets: int = 0  # a resume the room could no longer serve from its replay window
    errors: Counter[str] = field(default_factory=Counter)  # error events by code
    latency: dict[str, LatencyHistogram] = field(default_factory=lambda: {c: LatencyHistogram() for c in CLASSES})
    events_per_s: Counter[int] = field(default_factory=Counter)  # wall-clock second -> events delivered
    latency_per_s: dict[int, LatencyHistogram] = field(default_factory=dict)

    @property
    def delivered(self) -> int:
        return sum(self.events_per_s.values())

    def read(self, messages: int) -> None:
        """One read of a socket completed `messages` messages."""
        if messages > 1:
            self.read_behind += messages - 1

    def count(self, second: int, events: int) -> None:
        self.events_per_s[second] += events

    def sample(self, klass: str, second: int, latency_ms: float) -> None:
        self.latency[klass].add_ms(latency_ms)
        self.latency_per_s.setdefault(second, LatencyHistogram()).add_ms(latency_ms)


@dataclass(frozen=True)
class ViewerRecord:
    """One viewer's life, as the parent needs it to compute what it should have received."""

    room: int  # index into the run's rooms
    node: int  # index into the run's targets
    start_seq: int
    end_seq: int | None  # None: it stayed to the end
    delivered: dict[str, int]


class AudienceViewer:
    """One viewer identity; it keeps its position across reconnects (a resume), not across a fresh join."""

    def __init__(self, tally: Tally, wire_name: str, room: int, node: int, sample_every_frames: int) -> None:
        self.tally = tally
        self.wire = wire_name
        self.room = room
        self.node = node
        self.sample_every_frames = max(1, sample_every_frames)
        self._frames_to_sample = random.randrange(self.sample_every_frames) + 1
        self.start_seq: int | None = 0 if wire_name == wire.SOCKETIO else None
        self.last_seq: int | None = self.start_seq
        self.end_seq: int | None = None
        self.epoch = ""
        self.delivered: Counter[str] = Counter()
        self.recent: deque[int] = deque(maxlen=RECENT_SEQ_MAX)
        self.replies: list[bytes] = []  # control answers the connection must send (Socket.IO pongs)
        self.awaiting_resume = False
        self.resume_outcome: bool | None = None  # of the last resume: True replayed, False reset

    @property
    def since(self) -> str | None:
        return f"{self.epoch}:{self.last_seq}" if self.epoch and self.last_seq is not None else None

    def record(self) -> ViewerRecord:
        return ViewerRecord(self.room, self.node, self.start_seq or 0, self.end_seq, dict(self.delivered))

    def leave(self) -> None:
        self.end_seq = self.last_seq if self.last_seq is not None else self.start_seq or 0

    def on_message(self, opcode: int, payload: bytes, arrived_ns: int, read_ns: int) -> None:
        self._frames_to_sample -= 1
        sampled = self._frames_to_sample <= 0
        if sampled:
            self._frames_to_sample = self.sample_every_frames
        elif opcode == wsframe.OP_BINARY and self.last_seq is not None and not self.awaiting_resume:
            counted = census(payload)
            if counted is not None and counted.first_seq > self.last_seq:
                self._count_fast(counted.chat, counted.probes, counted.last_seq, len(payload), arrived_ns)
                return
        self._decode(opcode, payload, arrived_ns, sampled)

    def _count_fast(self, chat: int, probes: int, last_seq: int, size: int, arrived_ns: int) -> None:
        tally = self.tally
        tally.frames += 1
        tally.payload_bytes += size
        self.delivered[CHAT] += chat
        if probes:
            self.delivered[MUST] += probes
        tally.count(arrived_ns // 1_000_000_000, chat + probes)
        self.last_seq = last_seq
        self.recent.append(last_seq)

    def _decode(self, opcode: int, payload: bytes, arrived_ns: int, sampled: bool) -> None:
        reply = wire.control_reply(self.wire, payload)
        if reply is not None:
            self.replies.append(reply)
        events = wire.decode_events(self.wire, opcode, payload)
        if events is None:
            self.tally.undecodable += 1
            return
        if not events:
            return
        self.tally.frames += 1
        self.tally.payload_bytes += len(payload)
        second = arrived_ns // 1_000_000_000
        counted = 0
        for event in events:
            kind = event.get("type")
            if self.awaiting_resume:
                self._resumed(kind == "reset")
            if kind in ("snapshot", "reset"):
                self._restart(event)
                continue
            if kind == "error":
                self.tally.errors[str(event.get("code"))] += 1
            klass = event_class(str(kind))
            seq = event.get("seq")
            if klass is None or not isinstance(seq, int) or not self._accept(seq):
                continue
            self.delivered[klass] += 1
            counted += 1
            ts = event.get("ts")
            if sampled and isinstance(ts, int | float):
                self.tally.sample(klass, second, arrived_ns / 1e6 - ts)
        self.tally.count(second, counted)

    def _resumed(self, reset: bool) -> None:
        self.awaiting_resume = False
        self.resume_outcome = not reset
        self.tally.resets += reset

    def _restart(self, event: dict[str, Any]) -> None:
        """A snapshot fixes where a fresh viewer starts; after a reset it only moves the position on."""
        seq = event.get("seq")
        if not isinstance(seq, int):
            return
        self.epoch = str(event.get("epoch", self.epoch))
        # After a reset the events between the old and the new position are lost, and show as lost.
        if self.start_seq is None:
            self.start_seq = seq
        self.last_seq = seq

    def _accept(self, seq: int) -> bool:
        """Whether `seq` is new to this viewer (a duplicate is counted and dropped)."""
        last = self.last_seq
        if last is not None and seq <= last:
            if seq in self.recent or (self.start_seq is not None and seq <= self.start_seq):
                self.tally.duplicates += 1
                return False
            self.tally.out_of_order += 1
        else:
            self.last_seq = seq
        self.recent.append(seq)
        return True


def expected_between(seqs: list[int], start: int, end: int | None) -> int:
    """How many of the sorted `seqs` lie in (start, end]; end None is open."""
    high = len(seqs) if end is None else bisect_right(seqs, end)
    return max(0, high - bisect_right(seqs, start))
