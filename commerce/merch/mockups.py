"""Mockups: the design drawn on its base item, once per design, item and colour (sizes look alike), kept in
PostgreSQL and in a small per-node cache, and served as JPEG.

The item is drawn from the simple shapes in base_items.json (polygons, ellipses, rounded rectangles, rings) on a
1000 x 1000 canvas scaled to `mockup_edge_px`, filled with the variant's colour; the design is fitted into the
item's print area keeping its aspect ratio, centred, and composited with its transparency.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from typing import Any

import asyncpg
from PIL import Image, ImageDraw, ImageOps

from commerce.merch.catalogue import BaseItem

CANVAS = 1000
BACKGROUND = (236, 236, 236)
JPEG_QUALITY = 85


def colour_key(colour: str | None) -> str:
    return colour or ""


def render_mockups(design: bytes, item: BaseItem, colours: dict[str, str], edge_px: int) -> dict[str, bytes]:
    """JPEG mockups of `design` on `item`, one per colour key -> hex. CPU work: run it in an image thread."""
    scale = edge_px / CANVAS
    x, y, w, h = (round(v * scale) for v in item.mockup["area"])
    with Image.open(io.BytesIO(design)) as opened:
        art = ImageOps.exif_transpose(opened).convert("RGBA")
    art = _fit(art, w, h)
    offset = (x + (w - art.width) // 2, y + (h - art.height) // 2)
    rendered = {}
    for key, hex_colour in colours.items():
        canvas = Image.new("RGB", (edge_px, edge_px), BACKGROUND)
        _draw_item(ImageDraw.Draw(canvas), item.mockup["shapes"], hex_colour, scale)
        canvas.paste(art, offset, art)
        out = io.BytesIO()
        canvas.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
        rendered[key] = out.getvalue()
    return rendered


def _fit(art: Image.Image, width: int, height: int) -> Image.Image:
    ratio = min(width / art.width, height / art.height)
    size = (max(1, round(art.width * ratio)), max(1, round(art.height * ratio)))
    if ratio < 1:
        art.thumbnail(size, Image.Resampling.LANCZOS)
        return art
    return art.resize(size, Image.Resampling.LANCZOS)


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return r, g, b


def _shade(hex_colour: str, factor: float) -> tuple[int, int, int]:
    r, g, b = _rgb(hex_colour)
    return round(r * factor), round(g * factor), round(b * factor)


def _outline(hex_colour: str) -> tuple[int, int, int]:
    """A darker edge for light items, a lighter one for dark items."""
    r, g, b = _rgb(hex_colour)
    if 0.299 * r + 0.587 * g + 0.114 * b > 128:
        return _shade(hex_colour, 0.75)
    return round(r + (255 - r) * 0.3), round(g + (255 - g) * 0.3), round(b + (255 - b) * 0.3)


def _draw_item(draw: ImageDraw.ImageDraw, shapes: list[dict[str, Any]], hex_colour: str, scale: float) -> None:
    outline = _outline(hex_colour)
    for shape in shapes:
        fill = _shade(hex_colour, shape.get("shade", 1.0))
        if "polygon" in shape:
            points = [(px * scale, py * scale) for px, py in shape["polygon"]]
            draw.polygon(points, fill=fill, outline=outline, width=max(1, round(3 * scale)))
        elif "ellipse" in shape:
            draw.ellipse([v * scale for v in shape["ellipse"]], fill=fill, outline=outline,
                         width=max(1, round(3 * scale)))
        elif "rounded" in shape:
            *box, radius = shape["rounded"]
            draw.rounded_rectangle([v * scale for v in box], radius=radius * scale, fill=fill, outline=outline,
                                   width=max(1, round(3 * scale)))
        elif "ring" in shape:
            *box, thickness = shape["ring"]
            draw.ellipse([v * scale for v in box], outline=fill, width=max(1, round(thickness * scale)))


class MockupCache:
    """The last `mockups_cached_max` mockups served by this node, in memory, in front of PostgreSQL."""

    def __init__(self, entries_max: int) -> None:
        self._entries_max = entries_max
        self._images: OrderedDict[tuple[int, str, str], bytes] = OrderedDict()

    async def get(self, pool: asyncpg.Pool, design_id: int, base_item_id: str, colour: str) -> bytes | None:
        key = (design_id, base_item_id, colour)
        image = self._images.get(key)
        if image is None:
            found = await pool.fetchval(
                "SELECT image FROM mockups WHERE design_id = $1 AND base_item_id = $2 AND colour = $3", *key)
            if found is None:
                return None
            image = self._images[key] = bytes(found)
            if len(self._images) > self._entries_max:
                self._images.popitem(last=False)
        else:
            self._images.move_to_end(key)
        return image


async def missing_colours(pool: asyncpg.Pool, design_id: int, base_item_id: str, keys: list[str]) -> list[str]:
    have = await pool.fetch("SELECT colour FROM mockups WHERE design_id = $1 AND base_item_id = $2"
                            " AND colour = ANY ($3::text[])", design_id, base_item_id, keys)
    present = {r["colour"] for r in have}
    return [k for k in keys if k not in present]


async def store_mockups(pool: asyncpg.Pool, design_id: int, base_item_id: str, images: dict[str, bytes],
                        now_ms: int) -> None:
    await pool.executemany(
        "INSERT INTO mockups (design_id, base_item_id, colour, image, rendered_ms) VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT DO NOTHING",
        [(design_id, base_item_id, key, image, now_ms) for key, image in images.items()],
    )
