"""Debian's coturn as the TURN relay of the NAT tests: on 127.0.0.1, free ports, one test user, no TLS.

Loopback peers are allowed (coturn refuses them by default), so a client on this machine whose ICE policy is
`relay` reaches a node only through an allocation on this server. Under `CI` a missing coturn fails the tests that
need it instead of skipping them (as Chromium and nginx do).
"""

from __future__ import annotations

import random
import socket
import subprocess
import time
from pathlib import Path

from programs import require_program

from livecore.embedded import free_port

TURNSERVER = Path("/usr/bin/turnserver")
START_S_MAX = 15.0
RELAY_PORTS = 200  # the range coturn allocates relayed addresses from


def require_coturn() -> None:
    require_program(TURNSERVER, "coturn", "TURN relay tests")


class Coturn:
    """One turnserver process with a long-term credential user, listening on a free UDP/TCP port."""

    def __init__(self, directory: Path, username: str = "viewer", password: str = "turn-test-pass") -> None:
        require_coturn()
        self.directory = directory
        self.username = username
        self.password = password
        self.port = free_port()
        self.url = f"turn:127.0.0.1:{self.port}?transport=udp"
        self.log_path = directory / "turnserver.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Coturn:
        self.directory.mkdir(parents=True, exist_ok=True)
        relay_min = random.randrange(20000, 60000 - RELAY_PORTS)
        command = [
            str(TURNSERVER), "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={self.port}",
            f"--min-port={relay_min}", f"--max-port={relay_min + RELAY_PORTS}", "--lt-cred-mech",
            f"--user={self.username}:{self.password}", "--realm=livecore.test", "--allow-loopback-peers",
            "--no-tls", "--no-dtls", "--no-cli", "--no-rfc5780", "--no-stun-backward-compatibility",
            f"--pidfile={self.directory / 'turnserver.pid'}", f"--log-file={self.log_path}", "--simple-log",
            "--no-software-attribute", f"--userdb={self.directory / 'turndb'}",
        ]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self._wait_listening()
        return self

    def _wait_listening(self) -> None:
        """Until the TCP listener (opened with the UDP one) accepts, or the process has died."""
        deadline = time.monotonic() + START_S_MAX
        while True:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"turnserver exited with {self._process.returncode}: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"turnserver did not listen on {self.port}: {self.log()}") from None
                time.sleep(0.05)

    def log(self) -> str:
        found = sorted(self.directory.glob("turnserver*.log"))
        return found[-1].read_text()[-3000:] if found else ""

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
