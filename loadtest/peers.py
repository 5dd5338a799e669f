"""The peers: servers a user would pick instead of livecore, started here from their registry packages, each with
a private Valkey: python-socketio with its Redis manager, and Node.js Socket.IO with the Redis adapter.

The Node.js packages are installed with npm at first use into NPM_DIR (pinned in peerservers/package.json), never
at `make` time; without `node` and `npm` that peer is skipped with the reason.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from loadtest.scenario import Scenario
from loadtest.target import LocalServer
from loadtest.venue import Venue, peer_venue

HERE = Path(__file__).parent / "peerservers"
NPM_DIR = Path(".livecore") / "loadtest-npm"
NPM_TIMEOUT_S = 300


class PeerServer(LocalServer):
    """A Socket.IO server and its Valkey, both started and stopped by the load tester."""

    managed = True

    def __init__(self) -> None:
        super().__init__()
        self.missing = ""  # why this peer cannot run here, if it cannot
        self.logged_errors: dict[str, int] = {}

    async def venue(self, scenario: Scenario) -> Venue:
        return peer_venue([self.base_url], scenario)


class PythonSocketIo(PeerServer):
    name = "python-socketio"

    def command(self, port: int, redis_url: str) -> list[str]:
        return [sys.executable, "-m", "loadtest.peerservers.socketio_server", "--port", str(port),
                "--redis-url", redis_url]


class NodeSocketIo(PeerServer):
    name = "node-socketio"

    def __init__(self) -> None:
        super().__init__()
        self.node = shutil.which("node")
        npm = shutil.which("npm")
        if self.node is None or npm is None:
            self.missing = "node and npm are needed for the Node.js Socket.IO peer and are not on PATH"
            return
        try:
            self.folder = install_packages(npm)
        except (OSError, subprocess.SubprocessError) as exc:
            self.missing = f"npm could not install the Socket.IO packages: {exc}"

    def command(self, port: int, redis_url: str) -> list[str]:
        return [str(self.node), str(self.folder / "socketio_server.js"), str(port), redis_url]


def install_packages(npm: str) -> Path:
    """The peer's folder with its node_modules, installed once (npm's registry, pinned versions)."""
    folder = NPM_DIR.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "socketio_server.js"):
        shutil.copyfile(HERE / name, folder / name)
    if not (folder / "node_modules" / "@socket.io" / "redis-adapter").exists():
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder, check=True,
                       timeout=NPM_TIMEOUT_S, stdout=subprocess.DEVNULL)
    return folder


def peer_server(name: str) -> PeerServer:
    return {"python-socketio": PythonSocketIo, "node-socketio": NodeSocketIo}[name]()
