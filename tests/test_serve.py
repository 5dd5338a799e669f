"""`livecore serve` as an operator runs it: embedded servers (and the print-on-demand simulator) in the data dir,
data kept across restarts, the live demo on by default there and off with --no-demo, the servers a killed node left
behind reused or restarted."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import aiohttp
import psutil
from servenode import Serve

LIVE_WAIT_S_MAX = 10.0
KEEPER = {"username": "keeper", "password": "kept across restarts", "birth_date": "1990-01-01", "region": "DE"}
DEMO_URL = r"watch the demo\s+(http://\S+/watch\.html\?room=(\d+))"
QUOTE = {"variant_id": "mug-11oz-white",
         "address": {"name": "K", "line1": "Hauptstr. 1", "city": "Berlin", "postcode": "10115", "country": "DE"}}


async def test_data_survives_restarts_and_left_over_servers_are_reused_or_restarted(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """The first run shows the demo (embedded servers, nothing set) and Ctrl-C ends it with the node; the second,
    with --no-demo, publishes nothing; after a crash the third reuses what the second left running."""
    nodes: list[Serve] = []
    try:
        await _three_runs(tmp_path / "data", http, nodes)
    finally:
        for serve in nodes:  # a failed step leaves no node running on
            serve.end()


async def _three_runs(data_dir: Path, http: aiohttp.ClientSession, nodes: list[Serve]) -> None:
    first = Serve(data_dir)
    nodes.append(first)
    await first.wait_ready(http)
    demo_stream = int((await first.wait_for_output(DEMO_URL)).group(2))
    # Live once the node has the publisher's media too, a moment after the demo's side connected.
    assert [(s["id"], s["creator"]["username"]) for s in await _live(http, first.url, wait=True)] == [
        (demo_stream, "demo_creator")]
    async with http.post(f"{first.url}/api/accounts", json=KEEPER) as r:
        assert r.status == 201
    async with http.post(f"{first.url}/api/shipping/quote", json=QUOTE) as r:  # the embedded simulator answers
        assert r.status == 200 and (await r.json())["shipping_cents"] > 0
    assert first.stop(signal.SIGINT) == 0
    assert "demo: stopped" in first.output()
    assert not _running(data_dir), "the embedded servers should stop with the node"

    second = Serve(data_dir, "--no-demo", port=first.port)
    nodes.append(second)
    await second.wait_ready(http)
    await second.wait_for_output(r"live demo\s+off")
    await _log_in_keeper(http, second.url)
    async with http.get(f"{second.url}/api/streams/{demo_stream}") as r:
        assert (await r.json())["state"] == "ended", "the demo ends its stream when the node stops"
    assert await _live(http, second.url) == []
    async with http.get(f"{second.url}/metrics") as r:
        assert '\nlivecore_media_rooms{role="owner"} 0.0\n' in await r.text(), "no WHIP session"
    assert "livecore.demo" not in second.output() and "watch the demo" not in second.output()

    second.kill()  # a crash: the embedded servers stay behind
    assert _running(data_dir)
    _stop_valkey(data_dir)  # ... and then Valkey goes too, and another program takes its port
    taken = socket.create_server(("127.0.0.1", int((data_dir / "valkey" / "port").read_text())))
    try:
        third = Serve(data_dir, "--no-demo", port=first.port)
        nodes.append(third)
        await third.wait_ready(http)
        output = third.output()
        assert "reusing embedded PostgreSQL" in output and "is taken by another program" in output, output
        async with http.post(f"{third.url}/api/shipping/quote", json=QUOTE) as r:  # a new one, on the kept store
            assert r.status == 200
        await _log_in_keeper(http, third.url)
        assert third.stop() == 0
    finally:
        taken.close()
    assert not _running(data_dir), "servers reused from the killed node stop with the node that took them over"


async def _live(http: aiohttp.ClientSession, url: str, wait: bool = False) -> list[dict]:
    """What the directory lists; with `wait`, once it lists something (for at most LIVE_WAIT_S_MAX)."""
    deadline = time.monotonic() + LIVE_WAIT_S_MAX
    while True:
        async with http.get(f"{url}/api/live") as r:
            streams = (await r.json())["streams"]
        if streams or not wait or time.monotonic() > deadline:
            return streams
        await asyncio.sleep(0.1)


async def _log_in_keeper(http: aiohttp.ClientSession, url: str) -> None:
    async with http.post(f"{url}/api/sessions", json={k: KEEPER[k] for k in ("username", "password")}) as r:
        assert r.status == 200


def _stop_valkey(data_dir: Path) -> None:
    pid = int((data_dir / "valkey" / "valkey.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    psutil.Process(pid).wait(timeout=20)


def _running(data_dir: Path) -> bool:
    found = subprocess.run(["pgrep", "-f", str(data_dir)], capture_output=True, text=True)
    return bool(found.stdout.strip())
