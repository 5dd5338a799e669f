"""`livecore check` on a good set-up and on the mistakes that would only show once the node serves: a public URL
that leads nowhere, an internal URL that leads to another node (a load balancer), Stripe keys that Stripe refuses,
a missing webhook secret."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from livenode import NodeFactory, Servers
from servenode import Serve, clean_env, livecore
from stripeserver import run_localstripe

from livecore import preflight
from livecore.check import Row, clock_skew_ms, render
from livecore.config import CORES, WORKERS_MAX
from livecore.embedded import free_port
from livecore.startup import ExitCode

WEBHOOK_SECRET = "whsec_check_test"
CHECKS = ["settings", "data dir", "listen address", "workers", "embedded servers", "database", "redis", "clock",
          "public url", "internal url", "udp (webrtc)", "stripe"]


@pytest.fixture(scope="module")
def localstripe_url() -> Iterator[str]:
    yield from run_localstripe()


def _env(servers: Servers, **settings: str) -> dict[str, str]:
    return clean_env(LIVECORE_DATABASE_URL=servers.database_url, LIVECORE_REDIS_URL=servers.redis_url,
                     LIVECORE_STARTUP_WAIT_S="1", LIVECORE_CHECK_TIMEOUT_S="5", **settings)


def _rows(stdout: str) -> dict[str, tuple[str, str]]:
    """check -> (result, detail), from the printed table."""
    found = {}
    for line in stdout.splitlines()[1:]:
        name, result, detail = re.split(r"\s{2,}", line, maxsplit=2)
        found[name] = (result, detail)
    return found


async def _check(servers: Servers, tmp_path: Path, *args: str, **settings: str
                 ) -> tuple[int, dict[str, tuple[str, str]]]:
    """`livecore check` in a thread, so that nodes on this event loop can answer it."""
    done = await asyncio.to_thread(livecore, "check", "--data-dir", str(tmp_path / "data"), *args,
                                   env=_env(servers, **settings))
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, _rows(done.stdout)


async def test_a_good_set_up_passes_every_check_with_stripe_reached(
    servers: Servers, tmp_path: Path, localstripe_url: str
) -> None:
    code, rows = await _check(servers, tmp_path, "--port", str(free_port()), LIVECORE_STRIPE_SECRET_KEY="sk_test_check",
                        LIVECORE_STRIPE_API_BASE=localstripe_url, LIVECORE_STRIPE_WEBHOOK_SECRETS=WEBHOOK_SECRET)
    assert list(rows) == CHECKS
    assert code == 0, rows
    assert {name: result for name, (result, _) in rows.items()} == {
        **dict.fromkeys(CHECKS, "ok"), "embedded servers": "skipped"}
    assert "accepts the test-mode key" in rows["stripe"][1]
    assert "leads to this node" in rows["public url"][1] and "leads to this node" in rows["internal url"][1]
    assert rows["workers"][1].startswith("1: one node process serves"), rows["workers"]


async def test_the_workers_setting_is_shown_and_kept_in_its_range(servers: Servers, tmp_path: Path) -> None:
    port = str(free_port())
    code, rows = await _check(servers, tmp_path, "--port", port, "--workers", "3", "--node-id", "edge")
    result, detail = rows["workers"]
    assert result == "ok" and detail.startswith(
        f"3 node processes share 127.0.0.1:{port} (SO_REUSEPORT), nodes edge-w<index>-<pid>"), detail
    assert detail.endswith(f"; this machine gives it {CORES} cores" + (", fewer than the workers" if CORES < 3 else ""))
    for wrong in ("0", str(WORKERS_MAX + 1)):
        code, rows = await _check(servers, tmp_path, LIVECORE_WORKERS=wrong)
        assert code == ExitCode.CHECK_FAILED and rows["settings"] == (
            "FAIL", f"LIVECORE_WORKERS={wrong}: out of range (1 to {WORKERS_MAX}); set a value in that range")


async def test_stripe_is_skipped_without_keys_and_fails_on_a_refused_key_or_no_webhook_secret(
    servers: Servers, tmp_path: Path, localstripe_url: str
) -> None:
    code, rows = await _check(servers, tmp_path)
    assert rows["stripe"][0] == "skipped" and "no keys set" in rows["stripe"][1]

    # localstripe, like Stripe, answers 401 to a key it does not accept (it accepts only sk_ keys).
    code, rows = await _check(servers, tmp_path, LIVECORE_STRIPE_SECRET_KEY="rk_test_refused",
                        LIVECORE_STRIPE_API_BASE=localstripe_url, LIVECORE_STRIPE_WEBHOOK_SECRETS=WEBHOOK_SECRET)
    assert code == ExitCode.CHECK_FAILED
    assert rows["stripe"][0] == "FAIL" and "Stripe refused the key" in rows["stripe"][1], rows
    assert "rk_test_refused" not in rows["stripe"][1]

    code, rows = await _check(servers, tmp_path, LIVECORE_STRIPE_SECRET_KEY="sk_test_check",
                        LIVECORE_STRIPE_API_BASE=localstripe_url)
    assert code == ExitCode.CHECK_FAILED
    assert rows["stripe"][0] == "FAIL" and "LIVECORE_STRIPE_WEBHOOK_SECRETS is empty" in rows["stripe"][1]

    code, rows = await _check(servers, tmp_path, LIVECORE_STRIPE_SECRET_KEY="sk_test_check",
                        LIVECORE_STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}",
                        LIVECORE_STRIPE_WEBHOOK_SECRETS=WEBHOOK_SECRET)
    assert rows["stripe"][0] == "FAIL" and "cannot be reached" in rows["stripe"][1]


async def test_urls_that_lead_nowhere_fail_and_an_internal_url_must_lead_to_this_node(
    servers: Servers, tmp_path: Path, node_factory: NodeFactory
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    code, rows = await _check(servers, tmp_path, "--public-url", nowhere, "--internal-url", nowhere)
    assert code == ExitCode.CHECK_FAILED
    assert rows["public url"][0] == "FAIL" and "cannot be reached" in rows["public url"][1]
    assert rows["internal url"][0] == "FAIL" and "cannot be reached" in rows["internal url"][1]

    # Another livecore node answers there, as one behind a load balancer would: fine for browsers, not for nodes.
    other = await node_factory()
    code, rows = await _check(servers, tmp_path, "--public-url", other.url, "--internal-url", other.url)
    assert code == ExitCode.CHECK_FAILED
    assert rows["public url"][0] == "ok" and f"livecore node {other.node.settings.node_id}" in rows["public url"][1]
    assert rows["internal url"][0] == "FAIL" and "not as this node" in rows["internal url"][1]


async def test_check_beside_the_running_node_it_describes(
    servers: Servers, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    node = Serve(tmp_path / "data", env=_env(servers, LIVECORE_SEED_DEMO="no"))
    try:
        await node.wait_ready(http)
        code, rows = await _check(servers, tmp_path, "--port", str(node.port))
        assert code == 0, rows
        assert rows["listen address"] == ("ok", f"this node ({node.node_id}) is running there")
        assert rows["public url"][0] == "ok" and rows["internal url"][0] == "ok"
    finally:
        assert node.stop() == 0


def test_clock_skew_allows_for_the_round_trip() -> None:
    assert clock_skew_ms(1000, 1010, 1020) == (0, 10)  # read mid-way: no skew, 10 ms either way unknowable
    assert clock_skew_ms(1000, 3500, 1020) == (2490, 10)
    assert clock_skew_ms(1000, 900, 1000) == (-100, 0)


def test_the_table_is_aligned() -> None:
    table = render([Row("settings", "ok", "fine"), Row("public url", "FAIL", "answers, but not as this node")])
    lines = table.splitlines()
    assert lines[0].index("result") == lines[1].index("ok") == lines[2].index("FAIL")
    assert lines[0].index("detail") == lines[1].index("fine") == lines[2].index("answers")


def test_every_redis_command_the_code_sends_is_checked() -> None:
    """The command list `check` and `serve` ask Redis about covers every command in the node's Lua scripts and
    every redis-py command method the node calls."""
    root = Path(__file__).resolve().parent.parent
    demo = root / "livecore" / "demo"  # an HTTP client of the node: its `client.` is not Redis
    source = "\n".join(p.read_text() for folder in ("livecore", "signaling", "commerce")
                       for p in (root / folder).rglob("*.py") if not p.is_relative_to(demo))
    in_scripts = {name.upper() for name in re.findall(r"redis\.p?call\(\s*['\"](\w+)['\"]", source)}
    called = set(re.findall(r"(?:redis|pipe|client|pubsub)\.(\w+)\(", source)) - NOT_COMMANDS
    sent = in_scripts | {COMMAND_OF.get(method, method.upper()) for method in called}
    assert in_scripts and called, "the scan found nothing: its patterns are out of date"
    assert sent - {"INFO", "COMMAND"} <= set(preflight.REDIS_COMMANDS)  # those two only serve the check itself


NOT_COMMANDS = {"Redis", "aclose", "close", "call", "execute", "execute_command", "pipeline", "pubsub",
                "register_script", "set_response_callback", "get_message", "listen",
                # livecore/redisclient.py's own functions, and the cluster client's slot map
                "cluster_url", "connect", "names_cluster", "node_url", "is_cluster", "get_many", "shard_numsub",
                "get_node_from_key", "get_node", "get_primaries", "ConnectionPool", "keyslot", "bound", "turn"}
COMMAND_OF = {"script_load": "SCRIPT", "delete": "DEL", "mget_nonatomic": "MGET", "initialize": "CLUSTER"}
