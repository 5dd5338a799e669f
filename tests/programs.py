"""System programs some tests need (Debian's Chromium, nginx): skipped without them on a developer machine, a failure
under CI, where skipping would hide the tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def require_program(path: Path, package: str, tests: str) -> None:
    """Skip (locally) or fail (under CI) unless `path` exists; `tests` names what would not run."""
    if path.exists():
        return
    reason = f"{path} is missing (apt-get install {package})"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the {tests}", pytrace=False)
    pytest.skip(reason)
