"""`livecore serve`: run a node, on the embedded PostgreSQL and Valkey unless URLs are given; `livecore check`:
the same set-up checks without serving; `livecore grant`: give an account a role."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any

from aiohttp import web

from livecore import check, heap, logs, preflight, supervisor
from livecore.config import Settings, settings_from_env
from livecore.embedded import EmbeddedServers
from livecore.startup import EXIT_CODES_HELP, StartupError, env_name, flag_name

if TYPE_CHECKING:
    from livecore.demo import Demo

log = logging.getLogger("livecore.cli")

SETTING_NAMES = {f.name for f in dataclasses.fields(Settings)}
ROLES = ("viewer", "creator", "moderator", "advertiser", "admin")
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livecore", description="livecore: live streaming and live commerce.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser(
        "serve", help="run a node", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run a livecore node. With no database or Redis URL it starts a private PostgreSQL and\n"
        "Valkey under the data dir and keeps them across restarts. Every option can also be set as the\n"
        "environment variable shown; flags win over the environment. A set-up mistake is reported in one\n"
        "line naming the setting, and the node exits with one of the statuses below.\n\n"
        "--workers N (default: one per core) runs N node processes on the one port (SO_REUSEPORT): each is a\n"
        "node of its own in the registry (node id <node-id>-w<index>-<pid>, internal URL on a port of its\n"
        "own), so WHIP, WHEP, HLS and rooms work whichever worker a request reaches. This process starts the\n"
        "embedded servers and the demo once, restarts a worker that dies (waiting longer while it keeps\n"
        "dying) and on Ctrl-C or SIGTERM stops them all. --workers 1 serves in this one process.",
        epilog=f"exit statuses:\n  0  stopped by SIGINT or SIGTERM\n{EXIT_CODES_HELP}",
    )
    add_setting_flags(serve_parser)
    check_parser = commands.add_parser(
        "check", help="check the set-up without serving (for a deploy pipeline)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Check what `livecore serve` checks when it starts, and what would only show later: that\n"
        "the public URL leads to this node, the Stripe keys, UDP for WebRTC and the clock. Prints a table\n"
        "and exits 1 if any check failed. Takes the same settings as `serve`.",
        epilog="exit statuses:\n  0  every check passed or was skipped\n  1  a check failed (the table says which)\n"
        "  2  a usage error",
    )
    add_setting_flags(check_parser)
    grant = commands.add_parser(
        "grant", help="give an account a role (moderator, admin, advertiser, creator, viewer)",
        description="Give an account a role. Uses LIVECORE_DATABASE_URL, or the embedded PostgreSQL in --data-dir.",
    )
    grant.add_argument("username")
    grant.add_argument("role", choices=sorted(ROLES))
    grant.add_argument("--data-dir", default=None, help="data dir of the embedded PostgreSQL")
    return parser


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """`--name VALUE` for every Settings field, and for a yes/no one also `--name` alone and `--no-name`. Values stay
    strings here and are parsed (with errors naming the flag) by settings_from_env."""
    for f in dataclasses.fields(Settings):
        flag = flag_name(f.name)
        help = f"{f.metadata['help']} [{env_name(f.name)}] (default: {f.metadata['default_text']})"
        if not _is_bool(f.type):
            parser.add_argument(flag, dest=f.name, default=None, metavar=_metavar(f.type), help=help)
            continue
        parser.add_argument(flag, dest=f.name, default=None, nargs="?", const="true", metavar="BOOL", help=help)
        parser.add_argument("--no-" + flag[2:], dest=f.name, action="store_const", const="false",
                            help=f"the same as {flag} false")


def _is_bool(kind: Any) -> bool:
    return str(kind) in ("bool", "bool | None")


def _metavar(kind: Any) -> str:
    return {"int": "N", "Path": "DIR"}.get(str(kind), "TEXT")


def main(argv: list[str] | None = None) -> None:
    sys.exit(run_command(build_parser().parse_args(argv)))


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command; its exit status."""
    flags = {k: v for k, v in vars(args).items() if k in SETTING_NAMES and v is not None}
    try:
        settings = settings_from_env(flags=flags)
    except StartupError as exc:
        logs.configure("INFO", "")
        return check.failed_settings(exc) if args.command == "check" else report(exc)
    logs.configure(settings.log_level, settings.node_id)
    try:
        if args.command == "grant":
            return grant_role(settings, args.username, args.role)
        if args.command == "check":
            return check.run(settings)
        _install_uvloop()
        if settings.workers == 1:
            serve(settings)
        else:
            _serve_workers(settings)
    except StartupError as exc:
        return report(exc)
    except supervisor.WorkerFailed as exc:
        log.error(str(exc), extra={"exit_status": exc.status})  # the worker said why on stderr
        return exc.status
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return 0


def report(error: StartupError) -> int:
    """A set-up mistake: the log record, then the one line an operator reads; the exit status."""
    log.error(error.detail(), extra={"setting": error.setting, "exit_status": int(error.code)})
    print(error.line(), file=sys.stderr, flush=True)
    return int(error.code)


def _install_uvloop() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        log.warning("uvloop is not installed; using the default event loop")


def grant_role(settings: Settings, username: str, role: str) -> int:
    """Add `role` to an account; returns the process exit code."""
    with EmbeddedServers(adopt=False) as embedded:  # never stop the database of a running node
        if not settings.database_url:
            preflight.check_data_dir(settings.data_dir)
        settings = embedded.start(settings, redis=False)
        roles = asyncio.run(_grant(settings, username, role))
    if roles is None:
        print(f"livecore: there is no account {username!r}", file=sys.stderr)
        return 1
    print(f"{username} now has roles: {', '.join(sorted(roles))}")
    return 0


async def _grant(settings: Settings, username: str, role: str) -> list[str] | None:
    conn = await preflight.connect_database(settings.database_url, settings.startup_wait_s)
    try:
        return await conn.fetchval(
            "UPDATE accounts SET roles = array(SELECT DISTINCT unnest(roles || $2::text)) WHERE username = $1"
            " RETURNING roles", username.lower(), role,
        )
    finally:
        await conn.close()


def serve(settings: Settings) -> None:
    """Check the set-up in the order an operator fixes it (settings, data dir, port, servers), then serve until
    SIGINT or SIGTERM. A mistake raises StartupError before anything is served."""
    preflight.check_data_dir(settings.data_dir)
    listeners = preflight.bind_listeners(settings.host, settings.port)
    with contextlib.ExitStack() as stack:
        for sock in listeners:
            stack.callback(sock.close)
        settings = stack.enter_context(EmbeddedServers(adopt=True)).start(settings, fulfilment=True)
        asyncio.run(_run(settings, listeners))


def _serve_workers(settings: Settings) -> None:
    """`serve` with settings.workers node processes, supervised by this one."""
    supervisor.serve(settings, _print_worker_urls, _local_url(settings),
                     lambda stream_id: _print_demo_url(settings, stream_id))


async def _run(settings: Settings, listeners: list[socket.socket]) -> None:
    main_task = asyncio.current_task()
    assert main_task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, main_task.cancel)  # while starting too: waiting for a database is stoppable
    runner: web.AppRunner | None = None
    demo: Demo | None = None
    try:
        await preflight.check_database(settings.database_url, settings.startup_wait_s)
        await preflight.check_redis(settings.redis_url, settings.startup_wait_s)
        from livecore.app import build_app

        runner = web.AppRunner(build_app(settings), access_log=None, handle_signals=False)
        await runner.setup()
        heap.freeze_startup_heap()  # before serving: see livecore/heap.py
        for sock in listeners:
            await web.SockSite(runner, sock).start()
        _print_urls(settings)
        if settings.demo:
            from livecore.demo import Demo

            demo = Demo(_local_url(settings), on_live=lambda stream: _print_demo_url(settings, stream.id))
            await demo.start()
        await asyncio.Future()  # serve until a signal cancels this task
    except asyncio.CancelledError:
        log.info("shutting down")
    finally:
        if demo is not None:
            await demo.stop()  # while the node still serves: the demo ends its stream through the API
        if runner is not None:
            await runner.cleanup()


def _local_url(settings: Settings) -> str:
    """This node's own address, for the demo: the public URL may be a load balancer's."""
    host = "127.0.0.1" if settings.host in ("", "0.0.0.0", "::") else settings.host
    return f"http://{'[' + host + ']' if ':' in host else host}:{settings.port}"


def _print_worker_urls(settings: Settings, workers: list[supervisor.Worker]) -> None:
    lines = "".join(f"\n  worker {w.index:<9} node {w.node_id} at {w.internal_url} (pid {w.process.pid})"
                    for w in workers)
    _print_urls(settings, f"livecore is up with {len(workers)} workers on port {settings.port}.{lines}")


def _print_urls(settings: Settings, heading: str = "") -> None:
    base = settings.public_url
    demo = ("starting; its watch page follows once it is live" if settings.demo
            else "off (livecore serve --demo starts it)")
    print(
        f"\n{heading or f'livecore node {settings.node_id} is up.'}\n"
        f"  live directory   {base}/\n"
        f"  log in / sign up {base}/login.html   (demo: demo_creator / demo-creator-pass,"
        f" demo_viewer / demo-viewer-pass)\n"
        f"  API description  {base}/api/openapi.json\n"
        f"  metrics          {base}/metrics\n"
        f"  live demo        {demo}\n",
        flush=True,
    )


def _print_demo_url(settings: Settings, stream_id: int) -> None:
    print(f"  watch the demo   {settings.public_url}/watch.html?room={stream_id}", flush=True)


if __name__ == "__main__":
    main()

