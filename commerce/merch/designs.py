"""Designs: a creator's PNG or JPEG, checked before it is kept.

The checks run in this order, each refusing with a problem that names its limit: the byte size, the format
from the file's own signature (PNG or JPEG only, and what it was sent as), the pixel count read from the header
before anything is decoded (so a decompression bomb is refused without inflating it), the shortest side, and
finally a full decode that a truncated or corrupt file fails.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

import asyncpg
from PIL import Image, UnidentifiedImageError

from livecore.http import Problem

FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg"}


@dataclass(frozen=True)
class DesignLimits:
    bytes_max: int
    pixels_max: int
    edge_px_min: int


@dataclass(frozen=True)
class CheckedDesign:
    format: str
    width: int
    height: int
    data: bytes
    sha256: str


def check_design(data: bytes, declared_type: str | None, limits: DesignLimits) -> CheckedDesign:
    """The design if it passes every check; a Problem naming the first it fails. Decodes: run it in a thread."""
    if len(data) > limits.bytes_max:
        raise too_large(limits.bytes_max)
    if not data:
        raise Problem(400, "file-required", "the file is empty")
    try:
        with Image.open(io.BytesIO(data), formats=tuple(FORMATS)) as image:
            found, (width, height) = image.format or "", image.size
            _check_header(found, declared_type, width, height, limits)
            image.load()
    except Problem:
        raise
    except UnidentifiedImageError as exc:
        raise Problem(415, "unsupported-image", "the file is not a PNG or JPEG image") from exc
    except Image.DecompressionBombError as exc:  # past Pillow's own limit, refused while opening
        raise Problem(413, "design-too-many-pixels", f"the image has too many pixels: {exc}",
                      rule="design_pixels_max", limit_value=limits.pixels_max) from exc
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise Problem(422, "corrupt-image", f"the image could not be decoded: {exc}") from exc
    return CheckedDesign(found, width, height, data, hashlib.sha256(data).hexdigest())


def _check_header(found: str, declared_type: str | None, width: int, height: int, limits: DesignLimits) -> None:
    if declared_type and declared_type != FORMATS.get(found):
        raise Problem(415, "unsupported-image",
                      f"the file is a {found} image but was sent as {declared_type}; send image/png or image/jpeg")
    if width * height > limits.pixels_max:
        raise Problem(413, "design-too-many-pixels",
                      f"the image is {width} x {height} pixels; at most {limits.pixels_max} pixels are accepted",
                      rule="design_pixels_max", limit_value=limits.pixels_max, width=width, height=height)
    if min(width, height) < limits.edge_px_min:
        raise Problem(422, "design-too-small",
                      f"the image is {width} x {height} pixels; each side must be at least {limits.edge_px_min}",
                      rule="design_edge_px_min", limit_value=limits.edge_px_min, width=width, height=height)


def too_large(bytes_max: int) -> Problem:
    return Problem(413, "design-too-large", f"a design may be at most {bytes_max} bytes",
                   rule="design_bytes_max", limit_value=bytes_max)


async def store_design(pool: asyncpg.Pool, creator_id: int, design: CheckedDesign, now_ms: int) -> dict[str, Any]:
    """Keep a checked design; the same content uploaded again by the same creator is the same design."""
    row = await pool.fetchrow(
        "WITH new AS (INSERT INTO designs (creator_id, format, width, height, bytes, sha256, image, created_ms)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (creator_id, sha256) DO NOTHING"
        " RETURNING id, format, width, height, bytes, created_ms)"
        " SELECT *, true AS created FROM new UNION ALL SELECT id, format, width, height, bytes, created_ms,"
        " false FROM designs WHERE creator_id = $1 AND sha256 = $6",
        creator_id, design.format, design.width, design.height, len(design.data), design.sha256, design.data, now_ms,
    )
    if row is None:  # the same upload committed concurrently, after this statement's snapshot was taken
        row = await pool.fetchrow("SELECT id, format, width, height, bytes, created_ms, false AS created FROM designs"
                                  " WHERE creator_id = $1 AND sha256 = $2", creator_id, design.sha256)
    return design_view(row) | {"created": row["created"]}


def design_view(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "format": row["format"], "content_type": FORMATS[row["format"]], "width": row["width"],
            "height": row["height"], "bytes": row["bytes"]}


async def design_image(pool: asyncpg.Pool, creator_id: int, design_id: int) -> bytes:
    """A creator's own design's bytes; 404 when it is not theirs (or not there)."""
    image = await pool.fetchval("SELECT image FROM designs WHERE id = $1 AND creator_id = $2", design_id, creator_id)
    if image is None:
        raise Problem(404, "design-not-found", f"you have no design {design_id}")
    return bytes(image)
