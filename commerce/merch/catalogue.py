"""The print-on-demand catalogue: base items with a print area, drawn for mockups, and their variants (size x
colour, each with the provider's base cost). Shipped as base_items.json and copied into PostgreSQL at start, so
products and orders can reference variants by id."""

from __future__ import annotations

import importlib.resources
import re
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson


@dataclass(frozen=True)
class Variant:
    id: str
    base_item_id: str
    size: str | None
    colour: str | None
    colour_hex: str
    base_cost_cents: int

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "size": self.size, "colour": self.colour, "colour_hex": self.colour_hex,
                "base_cost_cents": self.base_cost_cents}


@dataclass(frozen=True)
class BaseItem:
    id: str
    name: str
    print_area: dict[str, int]
    mockup: dict[str, Any]  # {area: [x, y, w, h], shapes: [...]} on a 1000 x 1000 canvas
    variants: tuple[Variant, ...]

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "print_area": self.print_area,
                "variants": [v.public() for v in self.variants]}

    def variant(self, variant_id: str) -> Variant | None:
        return next((v for v in self.variants if v.id == variant_id), None)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _item(raw: dict[str, Any]) -> BaseItem:
    variants = []
    for size in raw["sizes"]:
        for colour in raw["colours"]:
            parts = [raw["id"], size["size"], colour["colour"] or ""]
            variants.append(Variant(
                id="-".join(_slug(p) for p in parts if p), base_item_id=raw["id"], size=size["size"],
                colour=colour["colour"], colour_hex=colour["hex"], base_cost_cents=size["base_cost_cents"],
            ))
    return BaseItem(raw["id"], raw["name"], raw["print_area"], raw["mockup"], tuple(variants))


def load() -> dict[str, BaseItem]:
    """The catalogue as shipped in base_items.json, by base item id."""
    raw = orjson.loads((importlib.resources.files("commerce.merch") / "base_items.json").read_bytes())
    items = [_item(entry) for entry in raw["items"]]
    return {item.id: item for item in items}


async def publish(pool: asyncpg.Pool) -> dict[str, BaseItem]:
    """Store the shipped catalogue (the file is the source of truth: names and costs are brought up to date)."""
    items = load()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('base_items'))")
        await conn.executemany(
            "INSERT INTO base_items (id, name, print_area) VALUES ($1, $2, $3::jsonb)"
            " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, print_area = EXCLUDED.print_area",
            [(i.id, i.name, orjson.dumps(i.print_area).decode()) for i in items.values()],
        )
        await conn.executemany(
            "INSERT INTO base_item_variants (id, base_item_id, size, colour, colour_hex, base_cost_cents, position)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET size = EXCLUDED.size,"
            " colour = EXCLUDED.colour, colour_hex = EXCLUDED.colour_hex,"
            " base_cost_cents = EXCLUDED.base_cost_cents, position = EXCLUDED.position",
            [(v.id, v.base_item_id, v.size, v.colour, v.colour_hex, v.base_cost_cents, n)
             for i in items.values() for n, v in enumerate(i.variants)],
        )
    return items
