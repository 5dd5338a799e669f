"""`livecore serve`: run a node, on the embedded PostgreSQL and Valkey unless URLs are given."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from livecore import logs
from livecore.config import Settings, env_name, parse_value, settings_from_env
from livecore.embedded import EmbeddedPostgres, EmbeddedValkey

log = logging.getLogger("livecore.cli")

SETTING_NAMES = {f.name for f in dataclasses.fields(Settings)}
ROLES = ("viewer", "creator", "moderator", "advertiser", "admin")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livecore", description="livecore: live streaming and live commerce.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run a node",
        description="Run a livecore node. With no database or Redis URL it starts a private PostgreSQL and "
        "Valkey under the data dir and keeps them across restarts. Every option can also be set as the "
        "environment variable shown; flags win over the environment.",
    )
    for f in dataclasses.fields(Settings):
        _add_setting_flags(serve, f)
    grant = commands.add_parser(
        "grant", help="give an account a role (moderator, admin, advertiser, creator, viewer)",
        description="Give an account a role. Uses LIVECORE_DATABASE_URL, or the embedded PostgreSQL in --data-dir.",
    )
    grant.add_argument("username")
    grant.add_argument("role", choices=sorted(ROLES))
    grant.add_argument("--data-dir", default=None, type=Path, help="data dir of the embedded PostgreSQL")
    return parser


def _add_setting_flags(parser: argparse.ArgumentParser, f: dataclasses.Field[Any]) -> None:
    """`--name VALUE` for every setting; a boolean also takes `--name` alone and `--no-name`."""
    flag = "--" + f.name.replace("_", "-")
    help = f"{f.metadata['help']} [{env_name(f.name)}] (default: {f.metadata['default_text']})"
    convert = functools.partial(parse_value, f.type)
    if not _is_bool(f.type):
        parser.add_argument(flag, dest=f.name, default=None, metavar=_metavar(f.type), type=convert, help=help)
        return
    parser.add_argument(flag, dest=f.name, default=None, nargs="?", const=True, metavar="BOOL", type=convert,
                        help=help)
    parser.add_argument("--no-" + flag[2:], dest=f.name, action="store_const", const=False,
                        help=f"the same as {flag} false")


def _is_bool(kind: Any) -> bool:
    return str(kind) in ("bool", "bool | None")


def _metavar(kind: Any) -> str:
    return {"int": "N", "Path": "DIR"}.get(str(kind), "TEXT")


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k in SETTING_NAMES}
    try:
        settings = settings_from_env(**overrides)
    except ValueError as exc:
        sys.exit(f"livecore: {exc}")
    logs.configure(settings.log_level, settings.node_id)
    if args.command == "grant":
        sys.exit(grant_role(settings, args.username, args.role))
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        log.warning("uvloop is not installed; using the default event loop")
    serve(settings)


def grant_role(settings: Settings, username: str, role: str) -> int:
    """Add `role` to an account; returns the process exit code."""
    pg = None if settings.database_url else EmbeddedPostgres(settings.data_dir / "postgres")
    url = settings.database_url or pg.start()  # type: ignore[union-attr]

    async def grant() -> str:
        conn = await asyncpg.connect(url)
        try:
            roles = await conn.fetchval(
                "UPDATE accounts SET roles = array(SELECT DISTINCT unnest(roles || $2::text)) WHERE username = $1"
                " RETURNING roles", username.lower(), role,
            )
        finally:
            await conn.close()
        return roles

    try:
        roles = asyncio.run(grant())
    finally:
        if pg is not None and pg.started_here:  # never stop the database of a running node
            pg.stop()
    if roles is None:
        print(f"livecore: there is no account {username!r}", file=sys.stderr)
        return 1
    print(f"{username} now has roles: {', '.join(sorted(roles))}")
    return 0


def serve(settings: Settings) -> None:
    embedded: list[EmbeddedPostgres | EmbeddedValkey] = []
    try:
        if not settings.database_url:
            pg = EmbeddedPostgres(settings.data_dir / "postgres")
            embedded.append(pg)
            settings = settings.replace(database_url=pg.start())
        if not settings.redis_url:
            valkey = EmbeddedValkey(settings.data_dir / "valkey")
            embedded.append(valkey)
            settings = settings.replace(redis_url=valkey.start())
        asyncio.run(_run(settings))
    finally:
        for server in reversed(embedded):
            server.stop()


async def _run(settings: Settings) -> None:
    from livecore.app import build_app

    runner = web.AppRunner(build_app(settings), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port, reuse_address=True).start()
    _print_urls(settings)
    demo = None
    if settings.demo:
        from livecore.demo import Demo

        demo = Demo(_local_url(settings), on_live=lambda stream: _print_demo_url(settings, stream.id))
        await demo.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    if demo is not None:
        await demo.stop()  # while the node still serves: the demo ends its stream through the API
    await runner.cleanup()


def _local_url(settings: Settings) -> str:
    """This node's own address, for the demo: the public URL may be a load balancer's."""
    host = "127.0.0.1" if settings.host in ("", "0.0.0.0", "::") else settings.host
    return f"http://{'[' + host + ']' if ':' in host else host}:{settings.port}"


def _print_urls(settings: Settings) -> None:
    base = settings.public_url
    demo = ("starting; its watch page follows once it is live" if settings.demo
            else "off (livecore serve --demo starts it)")
    print(
        f"\nlivecore node {settings.node_id} is up.\n"
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
