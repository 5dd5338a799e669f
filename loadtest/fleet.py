"""The viewer worker processes as one fleet, seen from the parent: start, watch, reset, collect, close."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from loadtest.worker import WorkerReport, run_worker

REPLY_TIMEOUT_S = 30.0
CLOSE_TIMEOUT_S = 10.0


def split_round_robin(items: list[str], parts: int) -> list[list[str]]:
    """`items` dealt into `parts` lists whose sizes differ by at most one."""
    return [items[index::parts] for index in range(parts)]


class RemoteWorker:
    """Stands for an agent's worker in the fleet's list of processes: it is watched through its connection."""

    pid = None
    exitcode = None

    def is_alive(self) -> bool:
        return True

    def join(self, timeout: float | None = None) -> None:
        return None

    def kill(self) -> None:
        return None


class Fleet:
    """Worker processes holding the viewers, and the latest progress each one reported."""

    def __init__(
        self, specs: list[Any], entry: Callable[[Connection, Any], None] = run_worker,
        remote: list[tuple[Connection, Any]] | None = None,
    ) -> None:
        context = multiprocessing.get_context("spawn")  # no inherited event loop, sockets or threads
        self.specs = specs
        self.pipes: list[Connection] = []
        self.processes: list[multiprocessing.process.BaseProcess | RemoteWorker] = []
        self.progress: dict[int, dict[str, Any]] = {}
        self._replies: dict[int, asyncio.Queue[Any]] = {}
        for spec in specs:
            parent_end, child_end = context.Pipe()
            process = context.Process(target=entry, args=(child_end, spec), daemon=True)
            process.start()
            child_end.close()
            self.pipes.append(parent_end)
            self.processes.append(process)
            self._replies[spec.index] = asyncio.Queue()
        for connection, spec in remote or []:  # an agent on another machine, already holding its spec
            self.specs = [*self.specs, spec]
            self.pipes.append(connection)
            self.processes.append(RemoteWorker())
            self._replies[spec.index] = asyncio.Queue()
        specs = self.specs
        loop = asyncio.get_running_loop()
        # Threads rather than loop.add_reader: uvloop makes a watched fd non-blocking, and a multiprocessing
        # Connection then fails with BlockingIOError halfway through a large message (a worker's report).
        self.readers = [
            threading.Thread(target=self._read_pipe, args=(spec.index, pipe, loop), daemon=True)
            for spec, pipe in zip(specs, self.pipes, strict=True)
        ]
        for reader in self.readers:
            reader.start()

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes if process.pid is not None]

    def total(self, key: str) -> int:
        return sum(int(progress.get(key, 0)) for progress in self.progress.values())

    async def wait_connected(self, viewers: int, report: Callable[[str], None], timeout_s: float) -> None:
        """Until every viewer connected or failed; raise if none connected."""
        deadline = time.monotonic() + timeout_s
        last_said = 0.0
        while len(self.progress) < len(self.specs) or self._settled() < viewers:
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"viewers still connecting after {timeout_s:.0f} s")
            if time.monotonic() - last_said >= 1.0:
                last_said = time.monotonic()
                report(f"connecting viewers: {self.total('connected')}/{viewers} open, "
                       f"{self.total('failed')} failed")
            await asyncio.sleep(0.1)
        report(f"viewers connected: {self.total('connected')}/{viewers}, {self.total('failed')} failed")
        if self.total("failed"):
            for worker in await self.reports():
                for reason, count in worker.failure_reasons.items():
                    report(f"worker {worker.index}: {count} x {reason}")
        if self.total("connected") == 0:
            raise ConnectionError("no viewer could connect; see the failure reasons above")

    async def reset(self) -> None:
        """Zero every worker's counts, so what they count from now on is the measured window."""
        await self._ask_all("reset")

    def tell(self, command: str) -> None:
        """Send `command` to every worker without waiting for an answer."""
        for pipe in self.pipes:
            pipe.send(command)

    async def ask(self, command: str) -> list[Any]:
        """Send `command` to every worker and return their answers, in worker order."""
        return await self._ask_all(command)

    async def reports(self) -> list[WorkerReport]:
        replies = await self._ask_all("report")
        return [reply["report"] for reply in replies]

    async def close(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send("close")
            except OSError:
                continue
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        for process in self.processes:
            await asyncio.to_thread(process.join, max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(1)
        for reader, pipe in zip(self.readers, self.pipes, strict=True):
            await asyncio.to_thread(reader.join, 1.0)  # it ends on the end-of-file of the exited worker
            pipe.close()

    def _settled(self) -> int:
        """Viewers whose connection attempt is over, one way or the other."""
        return self.total("connected") + self.total("failed")

    def _check_alive(self) -> None:
        for spec, process in zip(self.specs, self.processes, strict=True):
            if not process.is_alive():
                raise RuntimeError(f"viewer worker {spec.index} exited with code {process.exitcode}")

    async def _ask_all(self, command: str) -> list[Any]:
        for pipe in self.pipes:
            pipe.send(command)
        return [
            await asyncio.wait_for(self._replies[spec.index].get(), REPLY_TIMEOUT_S) for spec in self.specs
        ]

    def _read_pipe(self, index: int, pipe: Connection, loop: asyncio.AbstractEventLoop) -> None:
        """Runs in a thread: blocking reads of one worker's messages, handed to the event loop."""
        while True:
            try:
                message = pipe.recv()
                loop.call_soon_threadsafe(self._on_message, index, message)
            except (EOFError, OSError, RuntimeError):  # the worker or the loop is gone
                return

    def _on_message(self, index: int, message: Any) -> None:
        if isinstance(message, dict) and message.get("kind") == "progress":
            self.progress[index] = message
        elif message != "closed":
            self._replies[index].put_nowait(message)
