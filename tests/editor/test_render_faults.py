"""Faults around render jobs, with real processes killed: a render process SIGKILLed mid-render is rendered again
and makes one video; while Valkey is down or PostgreSQL is stopped, submitting an edit answers 503
`livecore:unavailable` naming the part, leaves nothing half-accepted, and works again once the part is back."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from editclient import auth, clip, finished, renders_of, submit, until_edit
from livenode import NodeFactory, RunningNode, Servers
from sources import make_source

from editor import edits
from livecore.embedded import EmbeddedPostgres, EmbeddedValkey

RESUBMITS_MAX = 100
RESUBMIT_PAUSE_S = 0.1


async def test_a_killed_render_process_is_rendered_again_and_makes_one_video(node_factory: NodeFactory,
                                                                            tmp_path: Path) -> None:
    node = await node_factory()
    creator = await node.signup()
    token = creator["token"]
    clips = [await clip(node, token, make_source(tmp_path / f"c{i}.mp4", seconds=3, colour=(60 * i, 80, 120)))
             for i in range(2)]
    status, edit = await submit(node, token, {"clips": [{"clip_id": c, "out_ms": 3000} for c in clips]})
    assert status == 202
    await until_edit(node, token, edit["id"], lambda e: e["state"] == "rendering" and e["progress"] > 0.1)
    process = renders_of(node).processes.running[edit["id"]]
    assert process.pid is not None
    os.kill(process.pid, signal.SIGKILL)  # mid-render: no goodbye, no result
    done = await finished(node, token, edit["id"])
    assert done["state"] == "done" and done["attempts"] == 2, done
    async with node.http.get(f"{node.url}/api/users/{creator['id']}/videos", headers=auth(token)) as response:
        videos = (await response.json())["items"]
    assert [v["id"] for v in videos] == [done["video_id"]] and videos[0]["state"] == "ready"
    assert 5900 <= videos[0]["duration_ms"] <= 6100


@pytest.fixture
async def valkey(tmp_path: Path) -> AsyncIterator[EmbeddedValkey]:
    server = EmbeddedValkey(tmp_path / "valkey")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_submitting_while_valkey_is_down_is_503_and_works_once_it_is_back(
        node_factory: NodeFactory, servers: Servers, valkey: EmbeddedValkey, tmp_path: Path) -> None:
    node = await node_factory(on=Servers(servers.database_url, valkey.url, servers.directory))
    creator = await node.signup()
    token = creator["token"]
    clip_id = await clip(node, token, make_source(tmp_path / "c.mp4", seconds=1))
    decisions = {"clips": [{"clip_id": clip_id, "out_ms": 1000}]}
    assert valkey.process is not None
    valkey.process.kill()  # -9
    valkey.process.wait()
    status, problem = await submit(node, token, decisions)
    assert status == 503 and problem["type"] == "livecore:unavailable" and problem["unavailable"] == "bus", problem
    count = await node.node.pool.fetchval("SELECT count(*) FROM edits WHERE author_id = $1", creator["id"])
    assert count == 0  # nothing half-accepted: the client was told to send it again
    for path in valkey.directory.iterdir():  # back empty, on the same port: the queue is gone with it
        if path.name != "port":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    # An edit accepted before the outage and lost with Redis's stream (stored, never taken): PostgreSQL has it.
    lost = await edits.create_edit(node.node.pool, creator["id"], decisions, 1000, "")
    await asyncio.to_thread(valkey.start)
    done = await _submitted_once_back(node, token, decisions)
    assert done["state"] == "done" and done["video_id"], done
    recovered = await finished(node, token, lost.id)
    assert recovered["state"] == "done" and recovered["attempts"] == 1 and recovered["video_id"], recovered


async def _submitted_once_back(node: RunningNode, token: str, decisions: dict[str, Any]) -> dict[str, Any]:
    """Submit again until the part is back (the first command may meet a stale pooled connection: 503 again),
    then follow the render to its end."""
    for _ in range(RESUBMITS_MAX):
        status, body = await submit(node, token, decisions)
        if status != 503:
            break
        await asyncio.sleep(RESUBMIT_PAUSE_S)
    assert status == 202, body
    return await finished(node, token, body["id"])


async def test_submitting_while_postgresql_is_stopped_is_503(node_factory: NodeFactory,
                                                             own_postgres: EmbeddedPostgres, tmp_path: Path) -> None:
    node = await node_factory(database_url=own_postgres.url)
    creator = await node.signup()
    token = creator["token"]
    clip_id = await clip(node, token, make_source(tmp_path / "c.mp4", seconds=1))
    decisions = {"clips": [{"clip_id": clip_id, "out_ms": 1000}]}
    await asyncio.to_thread(own_postgres.stop)
    try:
        status, problem = await submit(node, token, decisions)
        assert status == 503 and problem["type"] == "livecore:unavailable", problem
        assert problem["unavailable"] == "database"
    finally:
        await asyncio.to_thread(own_postgres.start)
    assert (await _submitted_once_back(node, token, decisions))["state"] == "done"
