"""One worker of `livecore serve --workers N`: a node process started by the supervisor (livecore/supervisor.py).

It serves the public port together with the other workers (SO_REUSEPORT: the kernel spreads connections over
them) and listens on a port of its own as well, its internal URL, where other nodes reach this very process for
relays and passed-on WHIP/WHEP session requests. Its node id is the supervisor's with `-w<index>-<pid>`, new with
every start, so a restarted worker is a new node in the registry and what the dead one held is seen as gone.

Run as `python -m livecore.worker --index I --ready-fd FD --parent PID` with its settings in LIVECORE_* variables;
once serving it writes one JSON line (`node`, `internal_url`, `pid`) to FD. It stops on SIGTERM or SIGINT, and
when its supervisor is gone (a supervisor killed with -9 leaves no worker behind).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import logging
import os
import signal
import socket
import sys

import orjson
import yarl
from aiohttp import web

from livecore import heap, logs, preflight
from livecore.config import Settings, settings_from_env
from livecore.startup import StartupError

log = logging.getLogger("livecore.worker")

PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent ends
LISTEN_BACKLOG = 128  # as preflight.bind_listeners


def worker_node_id(base: str, index: int, pid: int) -> str:
    """A worker's node id: the supervisor's, the worker's place and its process id (new with every start)."""
    return f"{base}-w{index}-{pid}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m livecore.worker", description=__doc__)
    parser.add_argument("--index", type=int, required=True, help="the worker's place, 0 to N-1")
    parser.add_argument("--ready-fd", type=int, required=True, help="where to say that it serves")
    parser.add_argument("--parent", type=int, required=True, help="the supervisor's process id")
    args = parser.parse_args(argv)
    _end_with_parent(args.parent)
    try:
        settings = settings_from_env()
    except StartupError as exc:
        logs.configure("INFO", "")
        sys.exit(_report(exc))
    settings = settings.replace(node_id=worker_node_id(settings.node_id, args.index, os.getpid()), demo=False)
    logs.configure(settings.log_level, settings.node_id)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        log.warning("uvloop is not installed; using the default event loop")
    try:
        asyncio.run(_serve(settings, args.ready_fd))
    except StartupError as exc:
        sys.exit(_report(exc))


def _end_with_parent(parent: int) -> None:
    """SIGTERM when the supervisor ends, however it ends; at once if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        sys.exit(0)


def _report(error: StartupError) -> int:
    log.error(error.detail(), extra={"setting": error.setting, "exit_status": int(error.code)})
    print(error.line(), file=sys.stderr, flush=True)
    return int(error.code)


def private_listener(host: str) -> socket.socket:
    """A listening socket on a free port of its own on `host` (a wildcard: every address), for the internal URL."""
    infos = socket.getaddrinfo(host or None, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


async def _serve(settings: Settings, ready_fd: int) -> None:
    main_task = asyncio.current_task()
    assert main_task is not None
    loop = asyncio.get_running_loop()
    stopping = False

    def stop() -> None:
        nonlocal stopping
        if not stopping:  # once: a second signal must not cut the shutdown short
            stopping = True
            main_task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    private = private_listener(settings.host)
    settings = settings.replace(
        internal_url=str(yarl.URL(settings.internal_url).with_port(private.getsockname()[1])))
    runner: web.AppRunner | None = None
    try:
        await preflight.check_database(settings.database_url, settings.startup_wait_s)
        await preflight.check_redis(settings.redis_url, settings.startup_wait_s)
        from livecore.app import build_app

        runner = web.AppRunner(build_app(settings), access_log=None, handle_signals=False)
        await runner.setup()
        heap.freeze_startup_heap()  # before serving: see livecore/heap.py
        await web.SockSite(runner, private).start()
        await web.TCPSite(runner, settings.host or None, settings.port, reuse_port=True,
                          backlog=LISTEN_BACKLOG).start()
        with os.fdopen(ready_fd, "wb") as ready:
            ready.write(orjson.dumps({"node": settings.node_id, "internal_url": settings.internal_url,
                                      "pid": os.getpid()}) + b"\n")
        await asyncio.Future()  # serve until a signal cancels this task
    except asyncio.CancelledError:
        log.info("worker shutting down")
    finally:
        if runner is not None:
            await runner.cleanup()
        private.close()


if __name__ == "__main__":
    main()
