"""Fixtures for money tests: the print-on-demand simulator as a real child process, and a Valkey of a test's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from podsim import PodSim

from livecore.embedded import EmbeddedValkey


@pytest.fixture
def podsim(tmp_path: Path, http: aiohttp.ClientSession) -> Iterator[PodSim]:
    sim = PodSim(tmp_path / "podsim", http)
    sim.directory.mkdir()
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def own_valkey(tmp_path: Path) -> Iterator[EmbeddedValkey]:
    """A Valkey for this test alone, so killing it leaves the session's up; every write is on disk before its
    answer, so a restart loses no room state (the empty-restart case belongs to the bus's own recovery)."""
    valkey = EmbeddedValkey(tmp_path / "valkey", ("--appendfsync", "always"))
    valkey.start()
    try:
        yield valkey
    finally:
        valkey.stop()
