"""The supervisor's parts that need no process: the restart delay, the settings it hands its workers, the port it
holds for them. Running workers are tested in tests/media/test_workers.py."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from livecore.config import settings_from_env
from livecore.embedded import free_port
from livecore.startup import ExitCode, StartupError
from livecore.supervisor import RestartDelay, reserve_port, worker_env
from livecore.worker import worker_node_id


def test_quick_deaths_double_the_delay_up_to_the_longest_and_a_long_run_resets_it() -> None:
    delay = RestartDelay(min_s=0.5, max_s=4.0)
    assert [delay.after_death(served_s=1.0) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert delay.after_death(served_s=4.0) == 0.5  # it served as long as the longest delay: a fresh start
    assert delay.after_death(served_s=0.1) == 1.0


def test_a_worker_reads_back_exactly_the_settings_it_was_given(tmp_path: Path) -> None:
    given = settings_from_env({}, flags={
        "port": "9123", "data_dir": str(tmp_path / "data"), "database_url": "postgresql://u:pw@db.internal/live",
        "redis_url": "redis://cache.internal:6380/2", "seed_demo": "false", "demo": "false", "workers": "3",
        "stripe_webhook_secrets": "whsec_new,whsec_old", "chat_chars_max": "42", "node_id": "edge",
        "public_url": "https://live.example.com"})
    assert settings_from_env(worker_env(given)) == given  # an unknown LIVECORE_ name would be refused


def test_the_demo_runs_in_the_supervisor_never_in_a_worker() -> None:
    given = settings_from_env({}, flags={"demo": "true"})
    assert given.demo and not settings_from_env(worker_env(given)).demo


def test_worker_node_ids_are_new_with_every_start() -> None:
    assert worker_node_id("127.0.0.1-8080", 1, 4242) == "127.0.0.1-8080-w1-4242"
    assert worker_node_id("edge", 1, 4242) != worker_node_id("edge", 1, 4243)


def test_the_held_port_takes_workers_listeners_and_keeps_other_programs_out() -> None:
    port = free_port()
    held = reserve_port("127.0.0.1", port)
    workers = []
    try:
        for _ in range(2):  # what aiohttp's TCPSite(reuse_port=True) does in each worker
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            listener.bind(("127.0.0.1", port))
            listener.listen()
            workers.append(listener)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # answered by a worker's listener, never the held socket (it does not listen)
        other = socket.socket()
        with pytest.raises(OSError):
            other.bind(("127.0.0.1", port))
        other.close()
        with pytest.raises(StartupError) as refused:
            reserve_port("127.0.0.1", _taken_port(workers))
        assert refused.value.code == ExitCode.BIND and refused.value.setting == "port"
    finally:
        for sock in (*held, *workers):
            sock.close()


def _taken_port(keep: list[socket.socket]) -> int:
    """A port another program listens on without SO_REUSEPORT."""
    taken = socket.create_server(("127.0.0.1", 0))
    keep.append(taken)
    return int(taken.getsockname()[1])
