"""When a room's pending events go out: at once while the room is quiet, batched only as its load grows.

A flush costs one `transport.write` per connection however many events its frame holds, so what a room costs is
its flushes per second times its connections (writes per second), and batching is what brings it down. But a write
sent at once is what gives the lowest latency, and while the node has CPU to spare it should spend it on that. The
rule:

- A room's load is its recent event rate (averaged over about RATE_WINDOW_S) times its connections on this node
  process: the writes per second it would take to flush every event alone. The node process's load is the sum over
  its rooms. A room batches only when both are high: its own load above `batch_writes_per_s_min` (below, batching
  it would save next to nothing) and the node process's above `batch_node_writes_per_s_min` (below, the node has
  the CPU to send every event at once: each write costs about 10-15 us of CPU here, most of it the kernel's TCP
  send, so 30,000 writes/s is about 40 % of a core). Otherwise every event is flushed at once (with whatever else
  arrived in the same turn of the loop).
- A busy room batches: a flush waits until a tick after the last one. The tick is the longest of
  `tick_ms_min`; the time the room's rate takes to fill a frame of `batch_frame_events` events (so a busy room's
  writes per event fall to about 1 / batch_frame_events, and the tick shortens as the rate grows); and its last
  flush's CPU cost times `tick_flush_cost_multiple` (a big room's flushes then take at most about
  1 / (1 + multiple) of the loop). It is capped at `tick_ms_max`, the most a batch may add to an event's latency.
- Even in a busy room an event that comes more than a tick after the last flush goes out at once.
- A must-deliver event (a gift, a bid, a moderation action) does not wait for a busy room's tick: it goes out at
  once with everything pending, unless the room already hurried a flush in the last `must_flush_gap_ms_min`, which
  bounds the extra flushes (each costs a full write per connection) to a few a second however many such events come.

Times are the event loop's seconds, passed in, so a test drives them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from livecore.config import Settings

RATE_WINDOW_S = 1.0  # the event rate is an exponentially weighted average over about this long
LOAD_REFRESH_S = 0.1  # a node process's load is summed over its rooms at most this often


@dataclass(frozen=True)
class TickRule:
    """The settings the rule reads (see livecore.config)."""

    tick_ms_min: int
    tick_ms_max: int
    tick_flush_cost_multiple: int
    batch_writes_per_s_min: int
    batch_node_writes_per_s_min: int
    batch_frame_events: int
    must_flush_gap_ms_min: int

    @classmethod
    def of(cls, settings: Settings) -> TickRule:
        return cls(settings.tick_ms_min, settings.tick_ms_max, settings.tick_flush_cost_multiple,
                   settings.batch_writes_per_s_min, settings.batch_node_writes_per_s_min, settings.batch_frame_events,
                   settings.must_flush_gap_ms_min)


class RoomTick:
    """One room's event rate, last flush and its cost; says when pending events are due."""

    def __init__(self, rule: TickRule) -> None:
        self.rule = rule
        self.rate_per_s = 0.0  # events per second, as of `_rate_at_s`
        self._rate_at_s = -math.inf
        self.last_flush_s = -math.inf
        self.flush_cost_s = 0.0  # the CPU time the last flush with events took
        self.hurried_s = -math.inf  # when a must-deliver event last brought a flush forward

    def event(self, now_s: float) -> None:
        """Count one event added to the room at `now_s`."""
        self.rate_per_s = self.rate_at(now_s) + 1 / RATE_WINDOW_S
        self._rate_at_s = now_s

    def rate_at(self, now_s: float) -> float:
        """The event rate as it has decayed by `now_s`."""
        if self.rate_per_s == 0.0:
            return 0.0
        return self.rate_per_s * math.exp(-(now_s - self._rate_at_s) / RATE_WINDOW_S)

    def flushed(self, now_s: float, cost_s: float | None) -> None:
        """A flush ran at `now_s`; `cost_s` is its CPU time when it carried events."""
        self.last_flush_s = now_s
        if cost_s is not None:
            self.flush_cost_s = cost_s

    def writes_per_s(self, now_s: float, connections: int) -> float:
        """The writes per second flushing every event alone would take: the room's load."""
        return self.rate_at(now_s) * connections

    def is_busy(self, now_s: float, connections: int, node_writes_per_s: float | None = None) -> bool:
        """Whether the room batches: its load and its node process's (`node_writes_per_s`; None: this room is the
        process's only one) are both above what the rule allows."""
        room = self.writes_per_s(now_s, connections)
        node = room if node_writes_per_s is None else node_writes_per_s
        return room > self.rule.batch_writes_per_s_min and node > self.rule.batch_node_writes_per_s_min

    def tick_s(self, now_s: float, connections: int, node_writes_per_s: float | None = None) -> float:
        """The gap the room keeps between flushes while it is busy (or while a slow connection drains)."""
        rule = self.rule
        cost_ms = 1000 * self.flush_cost_s * rule.tick_flush_cost_multiple
        fill_ms = 0.0
        if self.is_busy(now_s, connections, node_writes_per_s):
            fill_ms = 1000 * rule.batch_frame_events / self.rate_at(now_s)
        return min(rule.tick_ms_max, max(rule.tick_ms_min, fill_ms, cost_ms)) / 1000

    def due_s(self, now_s: float, connections: int, node_writes_per_s: float | None = None) -> float:
        """When events pending at `now_s` should be flushed: `now_s` itself means at once."""
        if not self.is_busy(now_s, connections, node_writes_per_s):
            return now_s
        return max(now_s, self.last_flush_s + self.tick_s(now_s, connections, node_writes_per_s))

    def may_hurry(self, now_s: float) -> bool:
        """Whether a must-deliver event arriving at `now_s` may bring the room's next flush forward to now."""
        return now_s - self.hurried_s >= self.rule.must_flush_gap_ms_min / 1000

    def hurried(self, now_s: float) -> None:
        self.hurried_s = now_s


class NodeLoad:
    """A node process's load: the writes per second its rooms would take flushing every event alone, summed over
    them at most every LOAD_REFRESH_S."""

    def __init__(self) -> None:
        self._writes_per_s = 0.0
        self._summed_s = -math.inf

    def writes_per_s(self, now_s: float, rooms: Iterable[tuple[RoomTick, int]]) -> float:
        """The load as of `now_s`; `rooms` (each room's tick and connections) is read only when it is summed again."""
        if now_s - self._summed_s >= LOAD_REFRESH_S:
            self._writes_per_s = sum(tick.writes_per_s(now_s, connections) for tick, connections in rooms)
            self._summed_s = now_s
        return self._writes_per_s
