"""An operator's usual first mistakes, made for real: `livecore serve` says each in one line naming the setting and
exits with the status for its cause, without a traceback; `livecore check` reports the same mistake in its table
and exits non-zero."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from livenode import Servers
from servenode import Serve, clean_env, livecore, the_one_line

from livecore.embedded import EmbeddedValkey, free_port
from livecore.startup import ExitCode

PASSWORD_ROLE = "livecore_pw_test"
RIGHT_PASSWORD = "right-horse-battery"
WRONG_PASSWORD = "hunter2-wrong"
HBA_LINE = f"host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n"


@dataclass
class Conditions:
    """Real failing conditions, made once for the module."""

    servers: Servers
    directory: Path
    taken_port: int
    closed_port: int
    valkeys: dict[str, str]
    password_role_url: str


@dataclass
class Mistake:
    code: ExitCode
    label: str  # how the one line names the setting
    says: str  # what else the line must say
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    check_row: str = ""  # the `livecore check` row that fails
    prepare: Callable[[Path], None] | None = None  # lays out a broken data dir


def _mistakes(c: Conditions) -> dict[str, Mistake]:
    def pg_url(port: int) -> str:
        return f"postgresql://livecore:{WRONG_PASSWORD}@127.0.0.1:{port}/livecore"

    return {
        "port in use": Mistake(ExitCode.BIND, "LIVECORE_PORT", "already in use", args=["--port", str(c.taken_port)],
                               check_row="listen address"),
        "host not bindable": Mistake(ExitCode.BIND, "LIVECORE_HOST", "Cannot assign requested address",
                                     args=["--host", "198.51.100.7"], check_row="listen address"),
        "data dir under a file": Mistake(ExitCode.DATA_DIR, "LIVECORE_DATA_DIR", "Not a directory",
                                         args=["--data-dir", str(c.directory / "a-file" / "data")],
                                         check_row="data dir"),
        "database unreachable": Mistake(ExitCode.DATABASE, "LIVECORE_DATABASE_URL", "connection refused",
                                        env={"LIVECORE_DATABASE_URL": pg_url(c.closed_port)}, check_row="database"),
        "database refuses the password": Mistake(
            ExitCode.DATABASE, "LIVECORE_DATABASE_URL", "refused the credentials",
            env={"LIVECORE_DATABASE_URL": c.password_role_url}, check_row="database"),
        "redis unreachable": Mistake(ExitCode.REDIS, "LIVECORE_REDIS_URL", "connection refused",
                                     env={"LIVECORE_REDIS_URL": f"redis://127.0.0.1:{c.closed_port}/0"},
                                     check_row="redis"),
        "redis refuses the password": Mistake(
            ExitCode.REDIS, "LIVECORE_REDIS_URL", "refused the credentials",
            env={"LIVECORE_REDIS_URL": c.valkeys["password"].replace("redis://", f"redis://:{WRONG_PASSWORD}@")},
            check_row="redis"),
        "redis needs a password": Mistake(ExitCode.REDIS, "LIVECORE_REDIS_URL", "asks for a password",
                                          env={"LIVECORE_REDIS_URL": c.valkeys["password"]}, check_row="redis"),
        "redis lacks a command": Mistake(ExitCode.REDIS, "LIVECORE_REDIS_URL", "lacks commands the node uses: EVALSHA",
                                         env={"LIVECORE_REDIS_URL": c.valkeys["renamed"]}, check_row="redis"),
        "redis in cluster mode": Mistake(ExitCode.REDIS, "LIVECORE_REDIS_URL", "cluster mode",
                                         env={"LIVECORE_REDIS_URL": c.valkeys["cluster"]}, check_row="redis"),
        "embedded postgres from another version": Mistake(
            ExitCode.EMBEDDED, "LIVECORE_DATA_DIR", "initialized by PostgreSQL version 13",
            env={"LIVECORE_DATABASE_URL": ""}, check_row="embedded servers", prepare=_old_postgres_data),
        "embedded valkey with a corrupt file": Mistake(
            ExitCode.EMBEDDED, "LIVECORE_DATA_DIR", "Invalid AOF manifest",
            env={"LIVECORE_REDIS_URL": ""}, check_row="embedded servers", prepare=_corrupt_valkey_data),
        "unknown setting": Mistake(ExitCode.SETTING, "LIVECORE_CHAT_CHAR_MAX",
                                   "did you mean LIVECORE_CHAT_CHARS_MAX", env={"LIVECORE_CHAT_CHAR_MAX": "50"},
                                   check_row="settings"),
        "value out of range": Mistake(ExitCode.SETTING, "--chat-chars-max", "out of range (1 to 100000)",
                                      args=["--chat-chars-max", "0"], check_row="settings"),
        "not a number": Mistake(ExitCode.SETTING, "LIVECORE_PORT", "not a whole number",
                                env={"LIVECORE_PORT": "eighty"}, check_row="settings"),
        "publishable stripe key": Mistake(ExitCode.SETTING, "LIVECORE_STRIPE_SECRET_KEY", "publishable key",
                                          env={"LIVECORE_STRIPE_SECRET_KEY": "pk_test_abc123"},
                                          check_row="settings"),
    }


def _old_postgres_data(data_dir: Path) -> None:
    """A PostgreSQL data dir copied from an older major version."""
    pgdata = data_dir / "postgres" / "pgdata"
    pgdata.mkdir(parents=True, mode=0o700)
    (pgdata / "PG_VERSION").write_text("13\n")
    (pgdata / "postgresql.conf").write_text("")


def _corrupt_valkey_data(data_dir: Path) -> None:
    """A Valkey append-only manifest damaged on disk."""
    aof = data_dir / "valkey" / "appendonlydir"
    aof.mkdir(parents=True)
    (aof / "appendonly.aof.manifest").write_text("this is not a manifest\n")


MISTAKES = [
    "port in use", "host not bindable", "data dir under a file", "database unreachable",
    "database refuses the password", "redis unreachable", "redis refuses the password", "redis needs a password",
    "redis lacks a command",
    "redis in cluster mode", "embedded postgres from another version", "embedded valkey with a corrupt file",
    "unknown setting", "value out of range", "not a number", "publishable stripe key",
]


CLUSTER_PORT_MAX = 55535


def _free_port_below(limit: int) -> int:
    for _ in range(100):
        port = random.randrange(20000, limit)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port below {limit}")


@pytest.fixture(scope="module")
def conditions(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Conditions]:
    directory = tmp_path_factory.mktemp("mistakes")
    (directory / "a-file").write_text("a regular file where the data dir should be\n")
    taken = socket.create_server(("127.0.0.1", 0))  # another program listening
    # A cluster-mode Valkey refuses a port above 55535 (its bus port is 10,000 higher): give it one below.
    (directory / "vk-cluster").mkdir()
    (directory / "vk-cluster" / "port").write_text(str(_free_port_below(CLUSTER_PORT_MAX)))
    valkeys = {
        "renamed": EmbeddedValkey(directory / "vk-renamed", ("--rename-command", "EVALSHA", "")),
        "cluster": EmbeddedValkey(directory / "vk-cluster", (
            "--cluster-enabled", "yes", "--cluster-config-file", str(directory / "vk-cluster" / "nodes.conf"),
            # Its bus on a free port of its own, not port + 10,000, which another program may hold (CI: "bind:
            # Address already in use ... (cluster)").
            "--cluster-port", str(free_port()))),
        "password": EmbeddedValkey(directory / "vk-password", ("--requirepass", RIGHT_PASSWORD)),
    }
    hba = servers.directory / "postgres" / "pgdata" / "pg_hba.conf"
    original_hba = hba.read_text()
    try:
        urls = {name: valkey.start() for name, valkey in valkeys.items()}
        hba.write_text(HBA_LINE + original_hba)  # this one role must give its password; the rest stay as they are
        asyncio.run(_password_role(servers.database_url, create=True))
        yield Conditions(
            servers, directory, taken.getsockname()[1], free_port(), urls,
            servers.database_url.replace("postgres@", f"{PASSWORD_ROLE}:{WRONG_PASSWORD}@"),
        )
    finally:
        taken.close()
        for valkey in valkeys.values():
            valkey.stop()
        hba.write_text(original_hba)
        asyncio.run(_password_role(servers.database_url, create=False))


async def _password_role(url: str, create: bool) -> None:
    conn = await asyncpg.connect(url)
    try:
        if create:
            await conn.execute(f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{RIGHT_PASSWORD}'")
        else:
            await conn.execute(f"DROP ROLE IF EXISTS {PASSWORD_ROLE}")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()


def _env(c: Conditions, mistake: Mistake) -> dict[str, str]:
    """The session's servers unless the mistake is about them; retries kept short."""
    settings = {"LIVECORE_DATABASE_URL": c.servers.database_url, "LIVECORE_REDIS_URL": c.servers.redis_url,
                "LIVECORE_STARTUP_WAIT_S": "1", "LIVECORE_CHECK_TIMEOUT_S": "2"}
    return clean_env(**(settings | mistake.env))


def _args(mistake: Mistake, data_dir: Path) -> list[str]:
    defaults = {"--port": str(free_port()), "--data-dir": str(data_dir)}
    given = dict(zip(mistake.args[::2], mistake.args[1::2], strict=True))
    return [part for flag, value in (defaults | given).items() for part in (flag, value)]


@pytest.mark.parametrize("name", MISTAKES)
def test_a_mistake_is_one_line_and_its_exit_status_in_serve_and_a_failed_row_in_check(
    name: str, conditions: Conditions, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    mistake = _mistakes(conditions)[name]
    if mistake.prepare:
        mistake.prepare(data_dir)
    env, args = _env(conditions, mistake), _args(mistake, data_dir)

    served = livecore("serve", *args, env=env)
    line = the_one_line(served)
    assert served.returncode == mistake.code, served.stderr
    assert mistake.label in line and mistake.says in line, line
    _assert_no_secret(served.stdout + served.stderr)

    checked = livecore("check", *args, env=env)
    assert checked.returncode == ExitCode.CHECK_FAILED, checked.stdout + checked.stderr
    assert "Traceback" not in checked.stderr, checked.stderr
    rows = [row for row in checked.stdout.splitlines() if row.startswith(mistake.check_row + " ")]
    assert rows and " FAIL " in rows[0] and mistake.label in rows[0] and mistake.says in rows[0], checked.stdout
    _assert_no_secret(checked.stdout + checked.stderr)


def _assert_no_secret(output: str) -> None:
    assert WRONG_PASSWORD not in output and "abc123" not in output, output


async def test_a_database_that_comes_up_after_the_node_is_waited_for(
    conditions: Conditions, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    port = free_port()
    env = clean_env(LIVECORE_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{port}/postgres",
                    LIVECORE_REDIS_URL=conditions.servers.redis_url, LIVECORE_STARTUP_WAIT_S="120",
                    LIVECORE_SEED_DEMO="no")
    node = Serve(tmp_path / "data", env=env)
    try:
        await node.wait_for_output("PostgreSQL is not answering yet")
        pg_port = int(conditions.servers.database_url.rsplit(":", 1)[1].split("/")[0])
        async with _forwarder(port, pg_port):  # the database comes up
            await node.wait_ready(http)
            assert node.stop() == 0
    finally:
        if node.process.poll() is None:
            node.kill()


class _forwarder:
    """A TCP forwarder from a loopback port to another: a database appearing at an address."""

    def __init__(self, port: int, target_port: int) -> None:
        self.port, self.target_port = port, target_port
        self.server: asyncio.Server | None = None
        self.pipes: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> _forwarder:
        self.server = await asyncio.start_server(self._connect, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in self.pipes:
            task.cancel()
        await asyncio.gather(*self.pipes, return_exceptions=True)

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.create_task(_pipe(source, sink))
            self.pipes.add(task)
            task.add_done_callback(self.pipes.discard)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    finally:
        sink.close()

