"""Fixtures for money tests: the print-on-demand simulator as a real child process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from podsim import PodSim


@pytest.fixture
def podsim(tmp_path: Path, http: aiohttp.ClientSession) -> Iterator[PodSim]:
    sim = PodSim(tmp_path / "podsim", http)
    sim.directory.mkdir()
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()
