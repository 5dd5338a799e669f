"""Bid increment tables: named presets shipped as data (increments.json), or a creator's own table."""

from __future__ import annotations

import bisect
import importlib.resources
import itertools
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson

from livecore.http import Problem

CUSTOM = "custom"


@dataclass(frozen=True)
class Increments:
    """How much a bid must beat the price by: the step of the last row whose `from_cents` is at or below it."""

    name: str
    steps: tuple[tuple[int, int], ...]  # (from_cents, step_cents), ascending from 0

    def step(self, price_cents: int) -> int:
        at = bisect.bisect_right(self.steps, (price_cents, float("inf"))) - 1
        return self.steps[max(at, 0)][1]

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "steps": [list(s) for s in self.steps]}


@cache
def _data() -> dict[str, Any]:
    return orjson.loads((importlib.resources.files("commerce.auctions") / "increments.json").read_bytes())


def presets() -> dict[str, Increments]:
    return {name: Increments(name, tuple((f, s) for f, s in rows)) for name, rows in _data()["presets"].items()}


def stored(name: str, steps: list[list[int]]) -> Increments:
    """An auction's table as it was stored when the auction opened."""
    return Increments(name, tuple((f, s) for f, s in steps))


def choose(raw: str | list[list[int]] | None, steps_max: int) -> Increments:
    """A preset by name, a custom table of [from_cents, step_cents] rows, or the default preset when None."""
    if raw is None:
        raw = _data()["default"]
    if isinstance(raw, str):
        found = presets().get(raw)
        if found is None:
            raise Problem(400, "invalid-field", f"there is no increment preset {raw!r}; presets: {sorted(presets())}",
                          field="increments")
        return found
    if not 1 <= len(raw) <= steps_max:
        raise Problem(400, "invalid-field", f"a custom increment table has 1 to {steps_max} rows",
                      field="increments", rule="auction_increment_steps_max", limit_value=steps_max)
    rows = []
    for row in raw:
        if len(row) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in row):
            raise Problem(400, "invalid-field", "each increment row is [from_cents, step_cents]", field="increments")
        rows.append((row[0], row[1]))
    if rows[0][0] != 0 or any(b[0] <= a[0] for a, b in itertools.pairwise(rows)) \
            or any(step < 1 for _, step in rows):
        raise Problem(400, "invalid-field", "increment rows start at 0 cents, ascend, and step by at least 1 cent",
                      field="increments")
    return Increments(CUSTOM, tuple(rows))
