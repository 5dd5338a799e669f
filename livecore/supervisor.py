"""`livecore serve --workers N` with N above 1: this process starts the embedded servers (and the print-on-demand
simulator) once, then N worker processes (livecore/worker.py) that serve the port together, each a node of its own
in the registry. It restarts a worker that dies, after a delay that doubles while restarts keep failing quickly,
runs the live demo once (not per worker), and on SIGINT or SIGTERM stops the demo, then the workers, then the
embedded servers.

The supervisor never accepts a connection: it holds the port bound but not listening (SO_REUSEPORT), so no other
program can take it while workers restart, and the kernel sends connections only to the workers' listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from livecore import preflight
from livecore.config import FIELDS, Settings
from livecore.embedded import EmbeddedServers
from livecore.startup import ExitCode, StartupError, env_name

if TYPE_CHECKING:
    from livecore.demo import Demo

log = logging.getLogger("livecore.supervisor")

READY_LINE_BYTES_MAX = 4096
EXIT_FAILED_START = int(ExitCode.CHECK_FAILED)  # a worker that failed to start without saying why
KILL_WAIT_S = 5.0


@dataclass
class Worker:
    """One running worker process and what it said once it served."""

    index: int
    process: asyncio.subprocess.Process
    node_id: str
    internal_url: str
    started_at: float


class WorkerFailed(Exception):
    """A worker ended (or took too long) before it served."""

    def __init__(self, index: int, status: int, why: str) -> None:
        super().__init__(f"worker {index} did not start: {why}")
        self.index = index
        self.status = status


class RestartDelay:
    """How long to wait before starting a dead worker again: the shortest after a worker that served for a while,
    doubling with each quick death after that, never above the longest, so a crash loop does not spin."""

    def __init__(self, min_s: float, max_s: float) -> None:
        self.min_s = min_s
        self.max_s = max_s
        self._next_s = min_s

    def after_death(self, served_s: float) -> float:
        """The wait before the next start of a worker that ended after serving `served_s` seconds."""
        if served_s >= self.max_s:
            self._next_s = self.min_s
        delay = self._next_s
        self._next_s = min(self.max_s, self._next_s * 2)
        return delay


def serve(settings: Settings, print_urls: Callable[[Settings, list[Worker]], None],
          demo_url: str, on_demo_live: Callable[[int], None]) -> None:
    """Reserve the port, start the embedded servers and the workers, and supervise until SIGINT or SIGTERM; a
    set-up mistake (or a worker that cannot start) raises StartupError or WorkerFailed."""
    preflight.check_data_dir(settings.data_dir)
    with contextlib.ExitStack() as stack:
        for sock in reserve_port(settings.host, settings.port):
            stack.callback(sock.close)
        settings = stack.enter_context(EmbeddedServers(adopt=True)).start(settings, fulfilment=True)
        supervisor = Supervisor(settings)
        asyncio.run(supervisor.run(lambda workers: print_urls(settings, workers), demo_url, on_demo_live))


def reserve_port(host: str, port: int) -> list[socket.socket]:
    """The port bound (SO_REUSEPORT, not listening) on every address `host` names: a taken port is found now, with
    the same one-line error as a single node's, and stays this service's while workers come and go."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(ExitCode.BIND, f"cannot be listened on ({exc.strerror})",
                           "set an address of this machine (127.0.0.1, 0.0.0.0, ::) or a name that resolves to one",
                           setting="host", value=host) from None
    held: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys((i[0], i[1], i[2], "", i[4]) for i in infos):
            sock = socket.socket(family, kind, proto)
            held.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError as exc:
        for sock in held:
            sock.close()
        raise preflight.bind_error(exc, host, port) from None
    return held


def worker_env(settings: Settings) -> dict[str, str]:
    """This process's environment with every setting spelled out as its LIVECORE_ variable (the embedded servers'
    URLs filled in), for a worker to read back with settings_from_env."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVECORE_")}
    for name in FIELDS:
        value = getattr(settings, name)
        if value is None:
            continue
        env[env_name(name)] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    env[env_name("demo")] = "false"  # the supervisor runs the demo, once
    return env


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workers: dict[int, Worker] = {}
        self._env = worker_env(settings)
        self._delays = [RestartDelay(settings.worker_restart_delay_ms_min / 1000,
                                     settings.worker_restart_delay_ms_max / 1000) for _ in range(settings.workers)]

    async def run(self, on_up: Callable[[list[Worker]], None], demo_url: str,
                  on_demo_live: Callable[[int], None]) -> None:
        main_task = asyncio.current_task()
        assert main_task is not None
        loop = asyncio.get_running_loop()
        stopping = False

        def stop() -> None:
            nonlocal stopping
            if not stopping:  # once: Ctrl-C pressed twice must not cut the workers' shutdown short
                stopping = True
                main_task.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        keepers: list[asyncio.Task[None]] = []
        demo: Demo | None = None
        try:
            await preflight.check_database(self.settings.database_url, self.settings.startup_wait_s)
            await preflight.check_redis(self.settings.redis_url, self.settings.startup_wait_s)
            # The first worker alone migrates the database and seeds the demo accounts; then the others start.
            await self._start(0)
            await asyncio.gather(*(self._start(index) for index in range(1, self.settings.workers)))
            on_up([self.workers[index] for index in sorted(self.workers)])
            keepers = [asyncio.create_task(self._keep(index)) for index in range(self.settings.workers)]
            if self.settings.demo:
                from livecore.demo import Demo

                demo = Demo(demo_url, on_live=lambda stream: on_demo_live(stream.id))
                await demo.start()
            await asyncio.Future()  # supervise until a signal cancels this task
        except asyncio.CancelledError:
            log.info("shutting down %d workers", len(self.workers))
        finally:
            if demo is not None:
                await demo.stop()  # while the workers still serve: the demo ends its stream through the API
            for keeper in keepers:
                keeper.cancel()
            await asyncio.gather(*keepers, return_exceptions=True)
            await self._stop_all()

    async def _start(self, index: int) -> Worker:
        """Start worker `index` and wait until it serves."""
        read_fd, write_fd = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "livecore.worker", "--index", str(index), "--ready-fd", str(write_fd),
                "--parent", str(os.getpid()),
                env=self._env, pass_fds=(write_fd,), stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the supervisor only, which stops the workers in order
            )
        finally:
            os.close(write_fd)
        started_at = time.monotonic()
        try:
            said = await self._ready_line(index, process, read_fd)
        except BaseException:
            await _end(process)
            raise
        worker = Worker(index, process, said["node"], said["internal_url"], started_at)
        self.workers[index] = worker
        log.info("worker %d serving: node %s at %s (pid %d)", index, worker.node_id, worker.internal_url,
                 process.pid, extra={"worker": index, "worker_node": worker.node_id, "pid": process.pid})
        return worker

    async def _ready_line(self, index: int, process: asyncio.subprocess.Process, read_fd: int) -> dict[str, str]:
        """What the worker writes once it serves; WorkerFailed when it ends first or takes too long."""
        reader = asyncio.StreamReader(limit=READY_LINE_BYTES_MAX)
        transport, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0))
        try:
            async with asyncio.timeout(self.settings.worker_start_s_max):
                line = await reader.readline()  # empty at end of file: the worker ended
                if line:
                    return orjson.loads(line)
                status = await process.wait()
        except TimeoutError:
            raise WorkerFailed(index, EXIT_FAILED_START,
                               f"not serving after {self.settings.worker_start_s_max} s (worker_start_s_max)") from None
        finally:
            transport.close()
        raise WorkerFailed(index, status if status > 0 else EXIT_FAILED_START, f"it ended ({_describe(status)})")

    async def _keep(self, index: int) -> None:
        """Start worker `index` again whenever it ends, after its restart delay."""
        while True:
            worker = self.workers.get(index)
            if worker is not None:
                status = await worker.process.wait()
                served_s = time.monotonic() - worker.started_at
                del self.workers[index]
                delay_s = self._delays[index].after_death(served_s)
                log.warning("worker %d (node %s, pid %d) ended (%s) after %.1f s; starting it again in %.1f s",
                            index, worker.node_id, worker.process.pid, _describe(status), served_s, delay_s,
                            extra={"worker": index, "worker_node": worker.node_id, "exit_status": status})
            else:
                delay_s = self._delays[index].after_death(0)
            await asyncio.sleep(delay_s)
            try:
                await self._start(index)
            except WorkerFailed as exc:
                log.warning("%s; trying again", exc, extra={"worker": index})

    async def _stop_all(self) -> None:
        """SIGTERM to every worker; one still running after its shutdown time is killed."""
        wait_s = self.settings.shutdown_s_max + KILL_WAIT_S
        await asyncio.gather(*(_end(worker.process, wait_s) for worker in self.workers.values()))
        log.info("workers stopped")


async def _end(process: asyncio.subprocess.Process, wait_s: float = KILL_WAIT_S) -> int:
    """Wait for a process to end (it was asked to); kill it after `wait_s`."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(wait_s):
            return await process.wait()
    except TimeoutError:
        log.warning("worker pid %d did not stop in %.0f s; killing it", process.pid, wait_s)
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        return await process.wait()


def _describe(status: int) -> str:
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"

