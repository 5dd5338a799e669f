"""The flush tick (signaling/tick.py): at once while a room is quiet, batched only as its load grows.

Time is driven here: a room is fed events at given loop times and flushed when the rule says, the way
RoomHub.add and RoomHub.flush use it (a flush due at or before an event's arrival runs first).
"""

from __future__ import annotations

import math
import random

import pytest

from livecore.config import Settings
from signaling.tick import LOAD_REFRESH_S, NodeLoad, RoomTick, TickRule

RULE = TickRule.of(Settings())  # the defaults: what a node runs with
WRITE_COST_S = 8e-6  # a flush's CPU per connection measured on this machine (benchmarks/room_flush.py, README)
LOADED_NODE = 10 * RULE.batch_node_writes_per_s_min  # other rooms on the node process keep it this busy (writes/s)


def _flush_times(arrivals_s: list[float], connections: int, node_writes_per_s: float | None = None,
                 rule: TickRule = RULE) -> list[tuple[float, list[float]]]:
    """Each flush with its time and the arrival times of the events it carried; `node_writes_per_s` is the node
    process's load (None: this room is its only one)."""
    tick = RoomTick(rule)
    flushes: list[tuple[float, list[float]]] = []
    pending: list[float] = []
    due_s: float | None = None
    for arrival_s in [*arrivals_s, math.inf]:
        while due_s is not None and due_s <= arrival_s:
            flushes.append((due_s, pending))
            tick.flushed(due_s, WRITE_COST_S * connections)
            pending, due_s = [], None
        if arrival_s == math.inf:
            break
        pending.append(arrival_s)
        tick.event(arrival_s)
        if due_s is None:
            due_s = tick.due_s(arrival_s, connections, node_writes_per_s)
    return flushes


def _chat(rate_per_s: float, duration_s: float, seed: int = 11, start_s: float = 1000.0) -> list[float]:
    """Arrival times of chat at `rate_per_s` on average, with exponential gaps (seeded)."""
    rng = random.Random(seed)
    times, t = [], start_s
    while t < start_s + duration_s:
        t += rng.expovariate(rate_per_s)
        times.append(t)
    return times


def test_a_single_event_in_a_quiet_room_goes_out_at_once_whatever_its_size() -> None:
    for connections in (1, 500, 10_000):
        tick = RoomTick(RULE)
        tick.event(1000.0)
        assert tick.due_s(1000.0, connections) == 1000.0


def test_a_small_room_flushes_every_event_at_once_even_right_after_a_flush() -> None:
    # 50 chat/s to 20 viewers is 1,000 writes/s: too cheap to be worth any latency.
    flushes = _flush_times(_chat(50, 10), connections=20)
    assert all(flushed_s == arrivals[-1] for flushed_s, arrivals in flushes)
    assert sum(len(arrivals) for _, arrivals in flushes) == len(flushes) == len(_chat(50, 10))


def test_50_chat_per_s_to_500_connections_go_out_at_once_while_the_node_has_cpu_to_spare() -> None:
    # 25,000 writes/s: a third of a core spent on latency, since nothing else wants it.
    arrivals = _chat(50, 20)
    flushes = _flush_times(arrivals, connections=500)
    assert [events for _, events in flushes] == [[arrival_s] for arrival_s in arrivals]
    assert all(flushed_s == events[-1] for flushed_s, events in flushes)


def test_a_small_room_is_not_batched_even_on_a_loaded_node() -> None:
    flushes = _flush_times(_chat(50, 10), connections=20, node_writes_per_s=LOADED_NODE)
    assert all(len(events) == 1 and flushed_s == events[0] for flushed_s, events in flushes)


def test_50_chat_per_s_in_a_500_connection_room_is_batched_once_the_node_is_loaded() -> None:
    arrivals = _chat(50, 20)
    flushes = _flush_times(arrivals, connections=500, node_writes_per_s=LOADED_NODE)
    assert sum(len(events) for _, events in flushes) == len(arrivals)  # nothing is left behind
    settled = [events for flushed_s, events in flushes if flushed_s > arrivals[0] + 2]  # once the rate is known
    frame_events_mean = sum(len(events) for events in settled) / len(settled)
    assert frame_events_mean >= RULE.batch_frame_events - 0.5
    # The price is latency, and it is bounded: no event waits longer than tick_ms_max.
    waits_s = [flushed_s - arrival_s for flushed_s, events in flushes for arrival_s in events]
    assert max(waits_s) <= RULE.tick_ms_max / 1000 + 1e-9


def test_the_first_event_of_a_burst_goes_out_at_once_and_batching_starts_as_the_rate_grows() -> None:
    arrivals = _chat(50, 5)
    flushes = _flush_times(arrivals, connections=500, node_writes_per_s=LOADED_NODE)
    first_flush_s, first_events = flushes[0]
    assert first_events == [arrivals[0]] and first_flush_s == arrivals[0]
    sizes = [len(events) for _, events in flushes]
    assert max(sizes[:5]) <= 2 < max(sizes)  # while the rate is still being learned, events go out nearly alone


def test_the_tick_shortens_as_the_rate_grows_and_is_capped() -> None:
    def tick_ms(rate_per_s: float, connections: int) -> float:
        tick = RoomTick(RULE)
        arrivals = [1000 + n / rate_per_s for n in range(int(rate_per_s * 5))]  # 5 s: the average has settled
        for arrival_s in arrivals:
            tick.event(arrival_s)
        return 1000 * tick.tick_s(arrivals[-1], connections, LOADED_NODE)

    assert tick_ms(100, 1000) < tick_ms(50, 1000) < tick_ms(10, 1000) == RULE.tick_ms_max
    assert tick_ms(50, 500) <= 1000 * RULE.batch_frame_events / 50 * 1.05  # frames of about batch_frame_events


def test_a_big_room_keeps_the_flush_cost_rule() -> None:
    # 1,000 connections at 100 events/s: the flush costs 8 ms, so the tick is 8 x that, beyond the fill time.
    tick = RoomTick(RULE)
    for n in range(500):
        tick.event(1000 + n / 100)
    tick.flushed(1005.0, WRITE_COST_S * 1000)
    assert tick.tick_s(1005.0, 1000) * 1000 == pytest.approx(min(RULE.tick_ms_max, 8 * RULE.tick_flush_cost_multiple))


def test_a_room_that_calms_down_flushes_at_once_again() -> None:
    tick = RoomTick(RULE)
    for arrival_s in _chat(50, 10):
        tick.event(arrival_s)
        tick.flushed(arrival_s, WRITE_COST_S * 500)
    last_s = tick.last_flush_s
    assert tick.is_busy(last_s, 500, LOADED_NODE)
    calm_s = last_s + 3  # the rate has decayed to about 50 x e^-3 ~ 2.5/s: 1,250 writes/s
    tick.event(calm_s)
    assert tick.due_s(calm_s, 500, LOADED_NODE) == calm_s


def test_a_room_batches_as_its_node_gets_loaded_and_stops_as_the_load_goes() -> None:
    # One room under the node budget, then a second, busier room on the same node process.
    load, small, big = NodeLoad(), RoomTick(RULE), RoomTick(RULE)
    rooms = [(small, 500), (big, 0)]
    for n in range(250):  # 5 s at 50/s in the first room: 25,000 writes/s, under the node's budget
        small.event(1000 + n / 50)
    now_s = 1000 + 249 / 50
    assert not small.is_busy(now_s, 500, load.writes_per_s(now_s, rooms))
    rooms[1] = (big, 200)
    for n in range(300):  # for 3 s a second room gets 100 events/s to 200 connections: 20,000 writes/s more
        big.event(now_s + n / 100)
        if n % 2:
            small.event(now_s + n / 100)
    later_s = now_s + 299 / 100
    assert load.writes_per_s(now_s + LOAD_REFRESH_S / 2, rooms) == load.writes_per_s(now_s, rooms)  # not re-summed
    assert small.is_busy(later_s, 500, load.writes_per_s(later_s, rooms))
    quiet_s = later_s + 5  # both rooms quiet for 5 s: their rates decayed by e^-5
    assert not small.is_busy(quiet_s, 500, load.writes_per_s(quiet_s, rooms))


def test_must_deliver_events_bring_a_flush_forward_at_most_once_per_gap() -> None:
    tick = RoomTick(RULE)
    gap_s = RULE.must_flush_gap_ms_min / 1000
    assert tick.may_hurry(1000.0)  # never hurried yet
    tick.hurried(1000.0)
    assert not tick.may_hurry(1000.0 + gap_s * 0.99)
    assert tick.may_hurry(1000.0 + gap_s)
