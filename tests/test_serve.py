"""`livecore serve` as an operator runs it: embedded servers in the data dir, data kept across restarts, the live
demo on by default there and off with --no-demo."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import aiohttp
from serveprocess import Serve

DEMO_URL = r"watch the demo\s+(http://\S+/watch\.html\?room=(\d+))"


async def test_data_survives_a_restart_and_embedded_servers_stop(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    """The first run shows the demo (embedded servers, nothing set) and Ctrl-C ends it with the node; the second,
    with --no-demo, publishes nothing."""
    data_dir = tmp_path / "data"
    first = Serve(data_dir)
    await first.wait_ready(http)
    demo_stream = int((await first.wait_for_output(DEMO_URL)).group(2))
    async with http.get(f"{first.url}/api/live") as r:
        live = (await r.json())["streams"]
    assert [(s["id"], s["creator"]["username"]) for s in live] == [(demo_stream, "demo_creator")]
    body = {"username": "keeper", "password": "kept across restarts", "birth_date": "1990-01-01", "region": "DE"}
    async with http.post(f"{first.url}/api/accounts", json=body) as r:
        assert r.status == 201
    assert first.stop(signal.SIGINT) == 0
    assert "demo: stopped" in first.output()
    assert not _running(data_dir), "the embedded servers should stop with the node"

    second = Serve(data_dir, "--no-demo")
    await second.wait_ready(http)
    try:
        await second.wait_for_output(r"live demo\s+off")
        async with http.post(f"{second.url}/api/sessions", json={"username": "keeper",
                                                                 "password": "kept across restarts"}) as r:
            assert r.status == 200
        async with http.get(f"{second.url}/api/streams/{demo_stream}") as r:
            assert (await r.json())["state"] == "ended", "the demo ends its stream when the node stops"
        async with http.get(f"{second.url}/api/live") as r:
            assert (await r.json())["streams"] == []
        async with http.get(f"{second.url}/metrics") as r:
            assert '\nlivecore_media_rooms{role="owner"} 0.0\n' in await r.text(), "no WHIP session"
    finally:
        assert second.stop() == 0
    assert "livecore.demo" not in second.output() and "watch the demo" not in second.output()


def _running(data_dir: Path) -> bool:
    found = subprocess.run(["pgrep", "-f", str(data_dir)], capture_output=True, text=True)
    return bool(found.stdout.strip())
