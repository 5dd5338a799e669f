"""What one viewer does with what it receives: decode, count by type, check sequence numbers, sample latency.

Viewers of one worker process share a `Tally`. Most msgpack frames are counted without decoding them
(loadtest.census); one frame in `sample_every_frames` per viewer, and any frame the census declines, is
decoded, and latency is read from every chat and probe in the sampled ones.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import msgpack
import orjson

from loadtest import wsframe
from loadtest.census import Census, census
from loadtest.histogram import LatencyHistogram

CHAT = "chat"
PROBE = "moderation"  # the must-deliver event the benchmark publishes and counts per viewer
RESTART_TYPES = frozenset({"snapshot", "reset"})  # after these, sequence numbers start over from the event's


class Tally:
    """Everything a worker's viewers received since the last reset; merged by the parent into a report."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.types: Counter[str] = Counter()
        self.frames = 0
        self.payload_bytes = 0
        self.seq_missing = 0
        self.seq_repeated = 0
        self.undecodable = 0
        self.latency_publish = LatencyHistogram()  # chat: the publisher's send time to arrival at the viewer
        self.latency_server = LatencyHistogram()  # chat: the server's `ts` to arrival
        self.latency_read = LatencyHistogram()  # chat: the publisher's send time to this process reading it
        self.latency_must = LatencyHistogram()  # probes: the server's `ts` to arrival
        self.last_workload_ns = 0  # arrival of the last frame with chat or a probe


class Viewer:
    """One connection's view of the room: its own sequence position and must-deliver count."""

    def __init__(self, tally: Tally, sample_every_frames: int) -> None:
        self.tally = tally
        self.sample_every_frames = max(1, sample_every_frames)
        # A random phase per viewer, because the server flushes all viewers of a room on the same tick:
        # without it every viewer would sample the same frames.
        self._frames_to_sample = random.randrange(self.sample_every_frames) + 1
        self.last_seq: int | None = None
        self.probes = 0
        self.snapshot: dict[str, Any] | None = None
        self.snapshot_first: bool | None = None  # whether the first frame held one, as the API promises

    def on_message(self, opcode: int, payload: bytes, arrived_ns: int, read_ns: int) -> None:
        """One frame: arrived (kernel timestamp) and read by this process at the given wall-clock times."""
        self._frames_to_sample -= 1
        sampled = self._frames_to_sample <= 0
        if sampled:
            self._frames_to_sample = self.sample_every_frames
        elif opcode == wsframe.OP_BINARY and self.last_seq is not None:
            counted = census(payload)
            if counted is not None and counted.first_seq > self.last_seq:
                self._count_census(counted, len(payload), arrived_ns)
                return
        self._decode(opcode, payload, (arrived_ns, read_ns), sampled)

    def _count_census(self, counted: Census, size: int, arrived_ns: int) -> None:
        """The fast path: a frame counted without decoding it (see loadtest.census)."""
        tally = self.tally
        tally.frames += 1
        tally.payload_bytes += size
        tally.types[CHAT] += counted.chat
        if counted.probes:
            tally.types[PROBE] += counted.probes
            self.probes += counted.probes
        tally.last_workload_ns = arrived_ns
        tally.seq_missing += counted.first_seq - self.last_seq - 1 + counted.seq_skipped
        self.last_seq = counted.last_seq

    def _decode(self, opcode: int, payload: bytes, receipt: tuple[int, int], sampled: bool) -> None:
        tally = self.tally
        try:
            events = msgpack.unpackb(payload) if opcode == wsframe.OP_BINARY else orjson.loads(payload)
            kinds = [event["type"] for event in events]
        except (ValueError, TypeError, KeyError, msgpack.UnpackException):
            tally.undecodable += 1
            return
        tally.frames += 1
        tally.payload_bytes += len(payload)
        if self.snapshot_first is None:
            self.snapshot_first = "snapshot" in kinds
        for kind, event in zip(kinds, events, strict=True):
            tally.types[kind] += 1
            if kind in RESTART_TYPES:
                self._restart(event)
            seq = event.get("seq")
            if seq is not None:
                self._advance(seq)
            if kind == CHAT or kind == PROBE:
                tally.last_workload_ns = receipt[0]
                self.probes += kind == PROBE
                if sampled:
                    _record_latency(event, receipt, tally)

    def _restart(self, event: dict[str, Any]) -> None:
        self.last_seq = None
        if event["type"] == "snapshot":
            self.snapshot = event

    def _advance(self, seq: int) -> None:
        last = self.last_seq
        if last is None or seq == last + 1:
            self.last_seq = seq
        elif seq > last:
            self.tally.seq_missing += seq - last - 1
            self.last_seq = seq
        else:
            self.tally.seq_repeated += 1


def chat_text(sent_ns: int, index: int) -> str:
    """The benchmark's chat text: the publisher's send time, so latency is measured from the publisher."""
    return f"t={sent_ns} p={index}"


def sent_ns_of(text: str) -> int | None:
    """The send time embedded by `chat_text`, or None for any other chat."""
    if not text.startswith("t="):
        return None
    end = text.find(" ")
    digits = text[2:] if end < 0 else text[2:end]
    return int(digits) if digits.isdigit() else None


def _record_latency(event: dict[str, Any], receipt: tuple[int, int], tally: Tally) -> None:
    """Chat from the publisher's send time and from the server's `ts`; probes (no text) from `ts` only.

    `receipt` is (arrived_ns, read_ns); latency is measured to arrival, and for chat also to the read.
    """
    arrived_ns, read_ns = receipt
    ts = event.get("ts")
    if event["type"] == PROBE:
        if ts is not None:
            tally.latency_must.add_ms(arrived_ns / 1e6 - ts)
        return
    sent_ns = sent_ns_of(event.get("text", ""))
    if sent_ns is not None:
        tally.latency_publish.add_ms((arrived_ns - sent_ns) / 1e6)
        tally.latency_read.add_ms((read_ns - sent_ns) / 1e6)
    if ts is not None:
        tally.latency_server.add_ms(arrived_ns / 1e6 - ts)
