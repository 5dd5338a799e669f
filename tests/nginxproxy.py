"""Debian's nginx in front of livecore nodes, configured with the README's own nginx block.

Each instance has its own prefix directory (config, pid file, temp paths, error and access logs) and listens on a
free port; the README block's upstream servers and `listen` are replaced by the test's. The access log is one JSON
object per request, naming the node (upstream address) that answered it.

Under `CI` a missing nginx fails the tests that need it instead of skipping them (as Chromium does).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import orjson
from programs import require_program

NGINX = Path("/usr/sbin/nginx")
README = Path(__file__).resolve().parent.parent / "README.md"
START_S_MAX = 15.0
_ACCESS_FORMAT = ('{"method":"$request_method","uri":"$request_uri","status":"$status",'
                  '"upstream":"$upstream_addr","node_mark":"$http_x_livecore_node"}')


def require_nginx() -> None:
    require_program(NGINX, "nginx", "load balancer tests")


def readme_site_config() -> str:
    """The README's nginx block (the one with `upstream livecore`)."""
    blocks = re.findall(r"```nginx\n(.*?)```", README.read_text(), flags=re.S)
    found = [block for block in blocks if "upstream livecore" in block]
    assert len(found) == 1, "the README should have exactly one nginx block with `upstream livecore`"
    return found[0]


def site_config(upstreams: list[str], port: int) -> str:
    """The README's block with these upstream servers (host:port) and listening on 127.0.0.1:`port`."""
    config = readme_site_config()
    servers = re.findall(r"^\s*server \d+\.\d+\.\d+\.\d+:\d+([^;]*);.*$", config, flags=re.M)
    assert servers, "the README's upstream block lists no servers"
    options = servers[0]
    lines = "\n".join(f"    server {address}{options};" for address in upstreams)
    config, replaced = re.subn(r"(upstream livecore \{\n)(?:\s*server [^\n]*\n)+", rf"\g<1>{lines}\n", config)
    assert replaced == 1, "the README's upstream block did not match"
    config, replaced = re.subn(r"^(\s*)listen [^;]+;", rf"\g<1>listen 127.0.0.1:{port};", config, flags=re.M)
    assert replaced == 1, "the README's server block has no single `listen`"
    return config


class Nginx:
    """One nginx master process (daemon off) with its own prefix under `directory`."""

    def __init__(self, directory: Path, upstreams: list[str], port: int) -> None:
        require_nginx()
        self.directory = directory
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        (directory / "livecore.conf").write_text(site_config(upstreams, port))
        (directory / "nginx.conf").write_text(self._main_config())
        self.stderr = open(directory / "stderr.log", "wb")  # closed in stop()
        self.process = subprocess.Popen(
            [str(NGINX), "-p", str(directory), "-c", str(directory / "nginx.conf"), "-g", "daemon off;"],
            stdout=self.stderr, stderr=subprocess.STDOUT,
        )
        self._wait_listening()

    def _main_config(self) -> str:
        d = self.directory
        # As root, workers would run as nobody, who cannot write the temp paths under a private test directory.
        user = "user root;\n" if os.geteuid() == 0 else ""
        return f"""{user}worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    log_format json escape=json '{_ACCESS_FORMAT}';
    access_log {d}/access.log json;
    include {d}/livecore.conf;
}}
"""

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_S_MAX
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"nginx exited: {self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                assert time.monotonic() < deadline, f"nginx did not listen: {self.output()}"
                time.sleep(0.05)

    def output(self) -> str:
        error_log = self.directory / "error.log"
        logged = error_log.read_text(errors="replace") if error_log.exists() else ""
        return (self.directory / "stderr.log").read_text(errors="replace") + logged

    def requests(self) -> list[dict[str, str]]:
        """Every request nginx has logged, oldest first: method, uri, status, upstream (the node's host:port, or
        several, comma-separated, when nginx tried more than one) and node_mark (a node's own request)."""
        log = self.directory / "access.log"
        if not log.exists():
            return []
        return [orjson.loads(line) for line in log.read_text().splitlines() if line.strip()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=15)
        self.stderr.close()
