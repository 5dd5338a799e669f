"""A worker process of a scenario run: many viewers on one uvloop, with churn and induced disconnects.

Parent -> worker: "agitate" (start churn and disconnects), "calm" (stop them), "report", "close".
Worker -> parent: {"kind": "progress", ...} every PROGRESS_INTERVAL_S, {"kind": "report", ...}, "closed".
A viewer the server closes (a slow consumer, a lost connection) or that the worker disconnects on purpose
resumes with `?since=<epoch>:<seq>`, as a real client does; one that churns leaves for good and a new one joins.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import uvloop

from loadtest import wire
from loadtest.audience import AudienceViewer, Tally, ViewerRecord
from loadtest.connection import ClientConnection, open_connection
from loadtest.histogram import LatencyHistogram
from loadtest.worker import FAILURE_REASONS_MAX, allow_open_files

PROGRESS_INTERVAL_S = 0.5
RESUME_PAUSE_S = 0.05  # a resuming client waits this long first, as real ones back off


@dataclass(frozen=True)
class Seat:
    """Where one viewer sits: its room and node (indexes into the run's lists) and how it connects there."""

    room: int
    node: int
    base_ws_url: str
    room_id: str
    token: str | None


@dataclass(frozen=True)
class CrowdSpec:
    index: int
    wire: str
    seats: list[Seat]
    connect_per_s: float
    connect_concurrency_max: int
    sample_every_frames: int
    churn_per_s: float
    disconnects_per_s: float


@dataclass
class CrowdReport:
    index: int
    records: list[ViewerRecord]
    tally: Tally
    joined: int
    failed: int
    failure_reasons: Counter[str]
    close_codes: Counter[int]  # closes the server started, by code
    churned: int
    resumes: int
    resumes_replayed: int
    join_ms: dict[int, int] = field(default_factory=dict)
    resume_ms: dict[int, int] = field(default_factory=dict)


class Member:
    """A viewer and its current connection."""

    def __init__(self, viewer: AudienceViewer, seat: Seat) -> None:
        self.viewer = viewer
        self.seat = seat
        self.connection: ClientConnection | None = None
        self.leaving = False  # the worker closes it on purpose; no resume
        self.induced = False  # the worker cut it, as a network loss would; it resumes
        self.resume_started: float | None = None


class Crowd:
    def __init__(self, pipe: Connection, spec: CrowdSpec) -> None:
        self.pipe = pipe
        self.spec = spec
        self.tally = Tally()
        self.members: list[Member] = []
        self.gone: list[ViewerRecord] = []
        self.failed = 0
        self.failure_reasons: Counter[str] = Counter()
        self.close_codes: Counter[int] = Counter()
        self.churned = self.resumes = self.resumes_replayed = 0
        self.join_ms, self.resume_ms = LatencyHistogram(), LatencyHistogram()
        self.done = asyncio.Event()
        self.closing = False
        self.agitators: list[asyncio.Task[None]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._read_commands, args=(loop,), daemon=True).start()
        progress = threading.Thread(target=self._report_progress, args=(loop,), daemon=True)
        progress.start()
        gate = asyncio.Semaphore(self.spec.connect_concurrency_max)
        start = time.monotonic()
        joins = []
        for number, seat in enumerate(self.spec.seats):
            delay = start + number / self.spec.connect_per_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.done.is_set():
                break
            await gate.acquire()
            joins.append(asyncio.create_task(self._join(seat, gate)))
        await asyncio.gather(*joins)
        await self.done.wait()
        self._stopping.set()
        await asyncio.to_thread(progress.join)

    def _new_viewer(self, seat: Seat) -> AudienceViewer:
        return AudienceViewer(self.tally, self.spec.wire, seat.room, seat.node, self.spec.sample_every_frames)

    async def _join(self, seat: Seat, gate: asyncio.Semaphore | None = None) -> None:
        member = Member(self._new_viewer(seat), seat)
        started = time.monotonic()
        try:
            await self._connect(member, since=None)
        except (TimeoutError, OSError, ConnectionError) as exc:
            self._record_failure(exc)
            return
        finally:
            if gate is not None:
                gate.release()
        self.join_ms.add_ms(1000 * (time.monotonic() - started))
        self.members.append(member)

    async def _connect(self, member: Member, since: str | None) -> None:
        seat = member.seat
        url = wire.room_url(seat.base_ws_url, self.spec.wire, seat.room_id, seat.token, since)

        def on_message(opcode: int, payload: bytes, arrived_ns: int, read_ns: int) -> None:
            member.viewer.on_message(opcode, payload, arrived_ns, read_ns)
            self._after_message(member)

        connection, _ = await open_connection(url, wire.subprotocols(self.spec.wire), on_message,
                                              on_read=self.tally.read)
        member.connection = connection
        greeting = wire.greeting(self.spec.wire)
        if greeting is not None:
            connection.send(wire.opcode(self.spec.wire), greeting)
        self._after_message(member)
        connection.closed.add_done_callback(lambda closed: self._on_closed(member, connection, closed))

    def _after_message(self, member: Member) -> None:
        viewer = member.viewer
        if viewer.replies and member.connection is not None:
            for reply in viewer.replies:
                member.connection.send(wire.opcode(self.spec.wire), reply)
            viewer.replies.clear()
        if member.resume_started is not None and viewer.resume_outcome is not None:
            self.resume_ms.add_ms(1000 * (time.monotonic() - member.resume_started))
            self.resumes_replayed += viewer.resume_outcome
            member.resume_started = None

    def _on_closed(self, member: Member, connection: ClientConnection, closed: asyncio.Future[int]) -> None:
        if member.connection is not connection or member.leaving or self.closing:
            return
        if not member.induced:
            self.close_codes[closed.result()] += 1
        member.induced = False
        asyncio.get_running_loop().create_task(self._resume(member))

    async def _resume(self, member: Member) -> None:
        """Reconnect where the viewer left off; the first frame tells whether the room could replay."""
        await asyncio.sleep(RESUME_PAUSE_S)
        if self.closing:
            return
        self.resumes += 1
        member.viewer.awaiting_resume = member.viewer.since is not None
        member.viewer.resume_outcome = None
        member.resume_started = time.monotonic()
        try:
            await self._connect(member, since=member.viewer.since)
        except (TimeoutError, OSError, ConnectionError) as exc:
            self._record_failure(exc)
            member.viewer.leave()
            self.members.remove(member)
            self.gone.append(member.viewer.record())

    async def _agitate(self, per_s: float, action: str) -> None:
        """Every 1/per_s seconds on average, disconnect or churn one random open viewer."""
        while True:
            await asyncio.sleep(random.expovariate(per_s))
            open_members = [m for m in self.members if m.connection is not None and m.resume_started is None]
            if not open_members:
                continue
            member = random.choice(open_members)
            if action == "disconnect":
                assert member.connection is not None
                member.induced = True
                member.connection.abort()  # the close callback resumes it, as after a network loss
            else:
                await self._churn(member)

    async def _churn(self, member: Member) -> None:
        member.leaving = True
        if member.connection is not None:
            member.connection.close()
        member.viewer.leave()
        self.members.remove(member)
        self.gone.append(member.viewer.record())
        self.churned += 1
        await self._join(member.seat)

    def _record_failure(self, exc: BaseException) -> None:
        self.failed += 1
        reason = f"{type(exc).__name__}: {exc}"[:300]
        if reason in self.failure_reasons or len(self.failure_reasons) < FAILURE_REASONS_MAX:
            self.failure_reasons[reason] += 1

    def _on_command(self, command: str) -> None:
        if command == "agitate":
            if self.spec.disconnects_per_s > 0:
                self.agitators.append(asyncio.create_task(self._agitate(self.spec.disconnects_per_s, "disconnect")))
            if self.spec.churn_per_s > 0:
                self.agitators.append(asyncio.create_task(self._agitate(self.spec.churn_per_s, "churn")))
        elif command == "calm":
            for task in self.agitators:
                task.cancel()
            self.agitators.clear()
            self._send("calm-done")
        elif command == "report":
            self._send({"kind": "report", "report": self.report()})
        elif command == "close":
            self.closing = True
            for member in self.members:
                if member.connection is not None:
                    member.connection.close()
            self.done.set()

    def report(self) -> CrowdReport:
        return CrowdReport(
            index=self.spec.index,
            records=[*self.gone, *(member.viewer.record() for member in self.members)],
            tally=self.tally,
            joined=len(self.members) + len(self.gone),
            failed=self.failed,
            failure_reasons=Counter(self.failure_reasons),
            close_codes=Counter(self.close_codes),
            churned=self.churned,
            resumes=self.resumes,
            resumes_replayed=self.resumes_replayed,
            join_ms=dict(self.join_ms.counts),
            resume_ms=dict(self.resume_ms.counts),
        )

    def _report_progress(self, loop: asyncio.AbstractEventLoop) -> None:
        """In a thread, so progress flows while the viewers keep the event loop saturated."""
        while True:
            last_second = self.tally.latency_per_s.get(int(time.time()) - 1)
            try:
                summary = last_second.summary() if last_second is not None else None
            except RuntimeError:  # a late frame of that second landed while it was read
                summary = None
            progress = {
                "kind": "progress", "index": self.spec.index,
                "p50_ms": summary.p50_ms if summary else None, "p99_ms": summary.p99_ms if summary else None,
                "connected": len(self.members), "failed": self.failed,
                "delivered": self.tally.delivered, "resumes": self.resumes,
                "errors": sum(self.tally.errors.values()) + sum(self.close_codes.values()),
            }
            if not self._send(progress):
                loop.call_soon_threadsafe(self._on_command, "close")
                return
            if self._stopping.wait(PROGRESS_INTERVAL_S):
                return

    def _send(self, message: object) -> bool:
        with self._lock:
            try:
                self.pipe.send(message)
            except OSError:
                return False
        return True

    def _read_commands(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            try:
                command = self.pipe.recv()
            except (EOFError, OSError):
                command = "close"
            loop.call_soon_threadsafe(self._on_command, command)
            if command == "close":
                return


def run_crowd(pipe: Connection, spec: CrowdSpec) -> None:
    """Process entry point."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    allow_open_files(2 * len(spec.seats) + 64)
    try:
        uvloop.run(Crowd(pipe, spec).run())
    finally:
        try:
            pipe.send("closed")
            pipe.close()
        finally:
            os._exit(0)
