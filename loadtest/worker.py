"""A viewer worker process: many viewer connections on one uvloop, steered by the parent through a pipe.

Parent -> worker: "reset" (start of the measured window), "report", "close".
Worker -> parent: {"kind": "progress", ...} every PROGRESS_INTERVAL_S, "reset-done", {"kind": "report", ...},
"closed". Workers start with the "spawn" method, so they inherit no event loop or sockets from the parent.
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
import resource
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection

import uvloop

from loadtest.connection import ClientConnection, open_connection
from loadtest.histogram import LatencyHistogram
from loadtest.viewer import CHAT, PROBE, Tally, Viewer

PROGRESS_INTERVAL_S = 0.25
FAILURE_REASONS_MAX = 5  # distinct connect-failure reasons kept per worker; the rest are only counted


@dataclass(frozen=True)
class WorkerSpec:
    index: int
    urls: list[str]  # one per viewer connection, token included
    subprotocols: tuple[str, ...]
    connect_per_s: float
    connect_concurrency_max: int
    sample_every_frames: int


@dataclass
class WorkerReport:
    """What one worker's viewers received in the measured window (picklable, merged by the parent)."""

    index: int
    connected: int
    failed: int
    failure_reasons: Counter[str]
    close_codes: Counter[int]
    types: Counter[str]
    frames: int
    payload_bytes: int
    seq_missing: int
    seq_repeated: int
    undecodable: int
    probes_per_viewer: Counter[int]  # how many open viewers received k probes
    latency_publish: dict[int, int]
    latency_server: dict[int, int]
    latency_read: dict[int, int]
    latency_must: dict[int, int]
    latency_join: dict[int, int]
    last_workload_ns: int
    snapshots: int  # viewers whose first frame held a snapshot


class ViewerPool:
    """The viewers of one worker and the pipe to the parent."""

    def __init__(self, pipe: Connection, spec: WorkerSpec) -> None:
        self.pipe = pipe
        self.spec = spec
        self.tally = Tally()
        self.viewers: list[tuple[Viewer, ClientConnection]] = []
        self.failed = 0
        self.failure_reasons: Counter[str] = Counter()
        self.close_codes: Counter[int] = Counter()
        self.closed = 0  # len(close_codes), as a plain int the progress thread can read safely
        self.pending = 0
        self.join_latency = LatencyHistogram()  # TCP connect to the end of the upgrade, per viewer
        self.done = asyncio.Event()
        self._stopping = threading.Event()
        self._send_lock = threading.Lock()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # Threads rather than loop.add_reader for the pipe: uvloop makes a watched fd non-blocking, and a
        # multiprocessing Connection then fails with BlockingIOError halfway through a large message.
        threading.Thread(target=self._read_commands, args=(loop,), daemon=True).start()
        progress = threading.Thread(target=self._report_progress, args=(loop,), daemon=True)
        progress.start()
        await self._connect_all()
        await self.done.wait()
        self._stopping.set()
        await asyncio.to_thread(progress.join)

    async def _connect_all(self) -> None:
        """Open every connection on a fixed schedule, never more than the concurrency bound at once."""
        gate = asyncio.Semaphore(self.spec.connect_concurrency_max)
        start = time.monotonic()
        tasks = []
        for number, url in enumerate(self.spec.urls):
            if self.done.is_set():
                break
            delay = start + number / self.spec.connect_per_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await gate.acquire()
            tasks.append(asyncio.create_task(self._connect_one(url, gate)))
        await asyncio.gather(*tasks)

    async def _connect_one(self, url: str, gate: asyncio.Semaphore) -> None:
        viewer = Viewer(self.tally, self.spec.sample_every_frames)
        self.pending += 1
        started = time.monotonic()
        try:
            connection, _ = await open_connection(url, self.spec.subprotocols, viewer.on_message)
        except (TimeoutError, OSError) as exc:
            self._record_failure(exc)
            return
        finally:
            self.pending -= 1
            gate.release()
        self.join_latency.add_ms(1000 * (time.monotonic() - started))
        self.viewers.append((viewer, connection))
        connection.closed.add_done_callback(self._record_close)

    def _record_close(self, closed: asyncio.Future[int]) -> None:
        self.close_codes[closed.result()] += 1
        self.closed += 1

    def _record_failure(self, exc: BaseException) -> None:
        self.failed += 1
        reason = f"{type(exc).__name__}: {exc}"[:300]
        if reason in self.failure_reasons or len(self.failure_reasons) < FAILURE_REASONS_MAX:
            self.failure_reasons[reason] += 1

    def _report_progress(self, loop: asyncio.AbstractEventLoop) -> None:
        """Runs in a thread, so progress keeps flowing while the viewers keep the event loop saturated."""
        while True:
            progress = {
                "kind": "progress",
                "index": self.spec.index,
                "connected": len(self.viewers),
                "failed": self.failed,
                "pending": self.pending,
                "closed": self.closed,
                "chat": self.tally.types[CHAT],
                "probes": self.tally.types[PROBE],
                "last_workload_ns": self.tally.last_workload_ns,
            }
            if not self._send(progress):
                loop.call_soon_threadsafe(self._close_all)
                return
            if self._stopping.wait(PROGRESS_INTERVAL_S):
                return

    def _send(self, message: object) -> bool:
        """Send to the parent from either thread; False when the parent is gone."""
        with self._send_lock:
            try:
                self.pipe.send(message)
            except OSError:
                return False
        return True

    def _reply(self, message: object) -> None:
        if not self._send(message):
            self._close_all()  # nobody will read what this worker measures

    def _close_all(self) -> None:
        for _, connection in self.viewers:
            connection.close()
        self.done.set()

    def _read_commands(self, loop: asyncio.AbstractEventLoop) -> None:
        """Runs in a thread: blocking reads of the parent's commands, handed to the event loop."""
        while True:
            try:
                command = self.pipe.recv()
            except (EOFError, OSError):
                command = "close"  # the parent is gone
            loop.call_soon_threadsafe(self._on_command, command)
            if command == "close":
                return

    def _on_command(self, command: str) -> None:
        if command == "reset":
            self.tally.reset()
            for viewer, _ in self.viewers:
                viewer.probes = 0
            self._reply("reset-done")
        elif command == "report":
            self._reply({"kind": "report", "report": self.report()})
        elif command == "close":
            self._close_all()

    def report(self) -> WorkerReport:
        tally = self.tally
        open_viewers = [viewer for viewer, connection in self.viewers if not connection.closed.done()]
        return WorkerReport(
            index=self.spec.index,
            connected=len(self.viewers),
            failed=self.failed,
            failure_reasons=Counter(self.failure_reasons),
            close_codes=Counter(self.close_codes),
            types=Counter(tally.types),
            frames=tally.frames,
            payload_bytes=tally.payload_bytes,
            seq_missing=tally.seq_missing,
            seq_repeated=tally.seq_repeated,
            undecodable=tally.undecodable,
            probes_per_viewer=Counter(viewer.probes for viewer in open_viewers),
            latency_publish=dict(tally.latency_publish.counts),
            latency_server=dict(tally.latency_server.counts),
            latency_read=dict(tally.latency_read.counts),
            latency_must=dict(tally.latency_must.counts),
            latency_join=dict(self.join_latency.counts),
            last_workload_ns=tally.last_workload_ns,
            snapshots=sum(1 for viewer, _ in self.viewers if viewer.snapshot_first),
        )


def allow_open_files(count: int) -> None:
    """Raise the soft open-file limit to `count` (it is often 1,024) as far as the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count if hard == resource.RLIM_INFINITY else min(count, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def run_worker(pipe: Connection, spec: WorkerSpec) -> None:
    """Process entry point."""
    # The parent owns Ctrl-C and tells workers to close; a worker killed by the terminal's SIGINT would lose
    # its report.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints where a stuck worker is
    allow_open_files(len(spec.urls) + 64)
    try:
        uvloop.run(ViewerPool(pipe, spec).run())
    finally:
        try:
            pipe.send("closed")
            pipe.close()
        finally:
            os._exit(0)  # skip interpreter teardown of thousands of sockets; the parent has what it needs
