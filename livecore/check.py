"""`livecore check`: the checks a starting node makes, and those whose failure would only show later (the public
and internal URLs, Stripe, WebRTC's UDP, the clock), run without serving and printed as a table. Exits 1 on any
failure.

How the URLs are checked: the node's own listening address is bound for a moment and a probe answers `/healthz`
there with a one-time token. Fetching `<internal_url>/healthz` must return that token, so the URL leads to this
host and port, not just to some livecore: other nodes relay this node's streams and pass its sessions' requests on
there. The public URL is what browsers use, in a cluster a load balancer's: it must lead to a livecore node, this
one or another. When a node with this node id is already running on the port, its own `/healthz` (which names the
node) is the proof instead of the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import secrets
import socket
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import aioice.ice
import asyncpg
import orjson
import redis.asyncio as redis
import stripe
from aiohttp import web

from livecore import preflight
from livecore.clock import Clock
from livecore.config import CORES, FIELDS, Settings
from livecore.embedded import EmbeddedServers
from livecore.startup import ExitCode, StartupError, env_name, mask

OK, FAIL, SKIPPED = "ok", "FAIL", "skipped"
CLOCK_SANE_AFTER = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)  # a clock before this was never set
PORT_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


@dataclass(frozen=True)
class Row:
    check: str
    result: str
    detail: str


def run(settings: Settings) -> int:
    """Run every check, print the table; the exit status (0 all passed or skipped, 1 something failed)."""
    data_dir_row = _row("data dir", lambda: preflight.check_data_dir(settings.data_dir))
    with contextlib.ExitStack() as stack:
        listeners, listen_row = _listen(settings)
        for sock in listeners:
            stack.callback(sock.close)
        embedded = stack.enter_context(EmbeddedServers(adopt=False))  # stops only servers started here
        settings, embedded_row = _embedded(settings, embedded, data_dir_ok=data_dir_row.result == OK)
        later = asyncio.run(_network_checks(settings, listeners, listen_row.result == OK))
    rows = [Row("settings", OK, f"all {len(FIELDS)} known and in range"), data_dir_row, listen_row,
            workers_row(settings), embedded_row, *later]
    print(render(rows), flush=True)
    return ExitCode.CHECK_FAILED if any(row.result == FAIL for row in rows) else 0


def failed_settings(error: StartupError) -> int:
    """The table when the settings themselves are wrong: nothing else can be checked."""
    print(render([Row("settings", FAIL, error.detail()), Row("everything else", SKIPPED, "fix the settings first")]),
          flush=True)
    return ExitCode.CHECK_FAILED


def render(rows: list[Row]) -> str:
    """A plain aligned table: check, result, detail."""
    header = Row("check", "result", "detail")
    width_check = max(len(r.check) for r in [header, *rows])
    width_result = max(len(r.result) for r in [header, *rows])
    return "\n".join(f"{r.check:<{width_check}}  {r.result:<{width_result}}  {r.detail}" for r in [header, *rows])


def _row(check: str, run_check: Callable[[], str]) -> Row:
    try:
        return Row(check, OK, run_check())
    except StartupError as exc:
        return Row(check, FAIL, exc.detail())


def _listen(settings: Settings) -> tuple[list[socket.socket], Row]:
    try:
        listeners = preflight.bind_listeners(settings.host, settings.port)
    except StartupError as exc:
        if exc.setting == "port" and _node_answers(f"http://{_host_for_url(settings.host)}:{settings.port}", settings):
            return [], Row("listen address", OK, f"this node ({settings.node_id}) is running there")
        return [], Row("listen address", FAIL, exc.detail())
    return listeners, Row("listen address", OK, f"{settings.host}:{settings.port} is free")


def workers_row(settings: Settings) -> Row:
    """How many node processes `serve` runs on the port, against the cores this machine gives it."""
    cores = f"this machine gives it {CORES} cores" + (", fewer than the workers" if settings.workers > CORES else "")
    if settings.workers == 1:
        return Row("workers", OK, f"1: one node process serves {settings.host}:{settings.port}; {cores}")
    return Row("workers", OK, f"{settings.workers} node processes share {settings.host}:{settings.port} "
               f"(SO_REUSEPORT), nodes {settings.node_id}-w<index>-<pid>; {cores}")


def _node_answers(base_url: str, settings: Settings) -> bool:
    """A livecore node with this node id (or one of its workers) answers /healthz at base_url."""
    try:
        with urllib.request.urlopen(f"{base_url}/healthz", timeout=settings.check_timeout_s) as response:
            return _names_this_node(str(orjson.loads(response.read()).get("node")), settings.node_id)
    except (OSError, ValueError):
        return False


def _host_for_url(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _embedded(settings: Settings, embedded: EmbeddedServers, data_dir_ok: bool) -> tuple[Settings, Row]:
    if settings.database_url and settings.redis_url:
        return settings, Row("embedded servers", SKIPPED, "database and Redis URLs are set")
    if not data_dir_ok:
        return settings, Row("embedded servers", SKIPPED, "they need a writable data dir")
    try:
        settings = embedded.start(settings)
    except StartupError as exc:
        return settings, Row("embedded servers", FAIL, exc.detail())
    return settings, Row("embedded servers", OK, embedded.describe())


async def _network_checks(settings: Settings, listeners: list[socket.socket], listen_ok: bool) -> list[Row]:
    rows: list[Row] = []
    async with contextlib.AsyncExitStack() as stack:
        conn = await _database(settings, rows)
        if conn is not None:
            stack.push_async_callback(conn.close)
        client = await _redis(settings, rows)
        if client is not None:
            stack.push_async_callback(client.aclose)
        rows.append(await _clock(settings, conn, client))
        rows.extend(await _urls(settings, listeners, listen_ok))
        rows.append(_udp())
        rows.append(await _stripe(settings))
    return rows


async def _database(settings: Settings, rows: list[Row]) -> asyncpg.Connection | None:
    if not settings.database_url:
        rows.append(Row("database", SKIPPED, "the embedded PostgreSQL did not start"))
        return None
    try:
        conn = await preflight.connect_database(settings.database_url, settings.startup_wait_s)
    except StartupError as exc:
        rows.append(Row("database", FAIL, exc.detail()))
        return None
    version = await conn.fetchval("SHOW server_version")
    rows.append(Row("database", OK, f"PostgreSQL {version} at {_masked(settings, 'database_url')}"))
    return conn


async def _redis(settings: Settings, rows: list[Row]) -> redis.Redis | None:
    if not settings.redis_url:
        rows.append(Row("redis", SKIPPED, "the embedded Valkey did not start"))
        return None
    try:
        client = await preflight.connect_redis(settings.redis_url, settings.startup_wait_s)
    except StartupError as exc:
        rows.append(Row("redis", FAIL, exc.detail()))
        return None
    try:
        what = await preflight.redis_features(client, settings.redis_url)
    except StartupError as exc:
        rows.append(Row("redis", FAIL, exc.detail()))
        await client.aclose()
        return None
    rows.append(Row("redis", OK, f"{what} at {_masked(settings, 'redis_url')}, with all "
                    f"{len(preflight.REDIS_COMMANDS)} commands the node uses"))
    return client


def _masked(settings: Settings, name: str) -> str:
    return mask(name, getattr(settings, name))


def clock_skew_ms(before_ms: float, remote_ms: float, after_ms: float) -> tuple[float, float]:
    """(skew, uncertainty): how far a server's clock read between before_ms and after_ms is from ours, and how
    much of that the round trip could explain."""
    return remote_ms - (before_ms + after_ms) / 2, (after_ms - before_ms) / 2


async def _clock(settings: Settings, conn: asyncpg.Connection | None, client: redis.Redis | None) -> Row:
    clock = Clock()
    now = dt.datetime.fromtimestamp(clock.now_s(), tz=dt.UTC)
    if now < CLOCK_SANE_AFTER:
        return Row("clock", FAIL, f"this machine's clock says {now:%Y-%m-%d %H:%M} UTC; set it (NTP)")

    async def postgres_ms() -> float:
        assert conn is not None
        return float(await conn.fetchval("SELECT extract(epoch FROM clock_timestamp()) * 1000"))

    async def redis_ms() -> float:
        assert client is not None
        seconds, micros = await client.time()
        return seconds * 1000 + micros / 1000

    found, wrong = [], []
    for name, read, present in (("PostgreSQL", postgres_ms, conn), ("Redis", redis_ms, client)):
        if present is None:
            continue
        before = clock.now_ms()
        remote = await read()
        skew, uncertainty = clock_skew_ms(before, remote, clock.now_ms())
        found.append(f"{skew:+.0f} ms from {name}")
        if abs(skew) - uncertainty > settings.clock_skew_ms_max:
            wrong.append(name)
    if not found:
        return Row("clock", SKIPPED, "neither PostgreSQL nor Redis answered to compare with")
    detail = f"{', '.join(found)} (bound {settings.clock_skew_ms_max} ms, {env_name('clock_skew_ms_max')})"
    if wrong:
        return Row("clock", FAIL, f"{detail}: synchronise the clocks (NTP) of this machine and {' and '.join(wrong)}")
    return Row("clock", OK, detail)


async def _urls(settings: Settings, listeners: list[socket.socket], listen_ok: bool) -> list[Row]:
    """The public and internal URL rows, both fetched while the probe answers on this node's own sockets."""
    if not listen_ok:
        return [Row(name, SKIPPED, "needs the listen address") for name in ("public url", "internal url")]
    token = secrets.token_urlsafe(16)
    timeout = aiohttp.ClientTimeout(total=settings.check_timeout_s)
    async with _probe(listeners, settings.node_id, token), aiohttp.ClientSession(timeout=timeout) as http:
        public = await _healthz(http, settings.public_url)
        internal = await _healthz(http, settings.internal_url)
    this_node = {"probe": token if listeners else None, "node": settings.node_id}
    return [_public_row(settings, public, this_node), _internal_row(settings, internal, this_node)]


async def _healthz(http: aiohttp.ClientSession, base_url: str) -> dict[str, Any] | str:
    """What `<base_url>/healthz` answered (a JSON object, {} for another answer), or why it could not be reached."""
    try:
        async with http.get(base_url.rstrip("/") + "/healthz") as response:
            body = await response.json(content_type=None) if response.status == 200 else {}
            return body if isinstance(body, dict) else {}
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return _reason(exc)


def _is_this_node(answer: dict[str, Any], this_node: dict[str, Any]) -> bool:
    return answer.get("probe", None) == this_node["probe"] and _names_this_node(str(answer.get("node")),
                                                                                this_node["node"])


def _names_this_node(answered: str, node_id: str) -> bool:
    """`answered` is this node's id, or one of its workers' (`<node-id>-w<index>-<pid>`, livecore/worker.py)."""
    return answered == node_id or re.fullmatch(rf"{re.escape(node_id)}-w\d+-\d+", answered) is not None


def _public_row(settings: Settings, answer: dict[str, Any] | str, this_node: dict[str, Any]) -> Row:
    label = env_name("public_url")
    if isinstance(answer, str):
        return Row("public url", FAIL, f"{label}={settings.public_url}: cannot be reached from here ({answer}); set "
                   "it to the URL browsers reach the service at (a load balancer's in a cluster)")
    if _is_this_node(answer, this_node):
        return Row("public url", OK, f"{settings.public_url} leads to this node ({settings.host}:{settings.port})")
    if answer.get("status") == "ok" and answer.get("node"):
        return Row("public url", OK, f"{settings.public_url} leads to livecore node {answer['node']} (a load "
                   "balancer in front of the cluster sends browsers to any node)")
    return Row("public url", FAIL, f"{label}={settings.public_url}: answers, but not as livecore; point it at this "
               "node or at the cluster's load balancer")


def _internal_row(settings: Settings, answer: dict[str, Any] | str, this_node: dict[str, Any]) -> Row:
    label = env_name("internal_url")
    if isinstance(answer, str):
        return Row("internal url", FAIL, f"{label}={settings.internal_url}: cannot be reached from here ({answer}); "
                   "set it to the address other nodes reach this node at")
    if _is_this_node(answer, this_node):
        return Row("internal url", OK, f"{settings.internal_url} leads to this node ({settings.host}:{settings.port}); "
                   "other nodes relay and pass session requests on there")
    return Row("internal url", FAIL, f"{label}={settings.internal_url}: answers, but not as this node "
               f"({settings.node_id} on {settings.host}:{settings.port}); it must lead to this very node, never to a "
               "load balancer")


@contextlib.asynccontextmanager
async def _probe(listeners: list[socket.socket], node_id: str, token: str) -> AsyncIterator[None]:
    """Answer /healthz on the node's own sockets with a one-time token while the public URL is fetched."""
    if not listeners:
        yield
        return

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "node": node_id, "probe": token})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        for sock in listeners:
            await web.SockSite(runner, sock).start()
        yield
    finally:
        await runner.cleanup()


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _udp() -> Row:
    """aiortc offers one host candidate per address of this machine, each on a UDP socket bound to port 0: those
    sockets must bind. There is no port range setting (aioice takes any free ephemeral port)."""
    addresses = aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True)
    if not addresses:
        return Row("udp (webrtc)", FAIL, "this machine has no address besides loopback: WebRTC peers would get no "
                   "ICE candidate; give it a network interface")
    failed = []
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.bind((address, 0))
        except OSError as exc:
            failed.append(f"{address} ({exc.strerror})")
    ports = _ephemeral_ports()
    if failed:
        return Row("udp (webrtc)", FAIL, f"UDP sockets do not bind on {', '.join(failed)}; WebRTC needs them")
    return Row("udp (webrtc)", OK, f"UDP binds on {', '.join(addresses)}{ports}")


def _ephemeral_ports() -> str:
    try:
        low, high = PORT_RANGE_FILE.read_text().split()
    except (OSError, ValueError):
        return ""
    return f" (ephemeral ports {low}-{high}; open them to viewers)"


async def _stripe(settings: Settings) -> Row:
    secrets_set = [s for s in settings.stripe_webhook_secrets.split(",") if s.strip()]
    if not settings.stripe_secret_key:
        if not secrets_set:
            return Row("stripe", SKIPPED, "no keys set (payments go through the local test provider)")
        return Row("stripe", OK, f"{len(secrets_set)} webhook secret(s) look valid; no API key set, so payments "
                   "go through the local test provider")
    if not secrets_set:
        return Row("stripe", FAIL, f"{env_name('stripe_webhook_secrets')} is empty: coins are credited only from "
                   "Stripe's signed webhooks; add the endpoint's signing secret (whsec_...)")
    mode = "live" if "_live_" in settings.stripe_secret_key else "test"
    found = await _stripe_balance(settings)
    if found is not None:
        return Row("stripe", FAIL, f"{env_name('stripe_secret_key')}: {found}")
    where = settings.stripe_api_base or "api.stripe.com"
    return Row("stripe", OK, f"{where} accepts the {mode}-mode key; {len(secrets_set)} webhook secret(s) look valid")


async def _stripe_balance(settings: Settings) -> str | None:
    """Ask Stripe for the balance with the key: None when the key is accepted, else what went wrong."""
    transport = stripe.AIOHTTPClient(timeout=settings.check_timeout_s)
    base: Any = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
    client = stripe.StripeClient(settings.stripe_secret_key, base_addresses=base, http_client=transport,
                                 max_network_retries=0)
    try:
        await client.v1.balance.retrieve_async()
    except stripe.PermissionError:
        return None  # a restricted key without balance access: Stripe knows the key
    except stripe.AuthenticationError as exc:
        return f"Stripe refused the key ({exc.user_message or exc.http_status}); copy the secret key again"
    except stripe.APIConnectionError:
        return f"Stripe cannot be reached at {settings.stripe_api_base or 'api.stripe.com'}"
    except stripe.StripeError as exc:
        return f"Stripe answered {exc.http_status}: {exc.user_message or exc}"
    finally:
        await transport.close_async()
    return None
