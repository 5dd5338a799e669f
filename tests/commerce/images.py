"""Test images made on the spot: designs with Pillow, and hostile files built byte by byte."""

from __future__ import annotations

import io
import struct
import zlib

import aiohttp
from livenode import RunningNode
from PIL import Image, ImageDraw


def design_png(width: int = 400, height: int = 300, colour: tuple[int, int, int, int] = (230, 40, 90, 255)) -> bytes:
    """A transparent PNG with a filled circle and a bar: something a creator might upload."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse([width * 0.1, height * 0.1, width * 0.6, height * 0.9], fill=colour)
    draw.rectangle([width * 0.65, height * 0.2, width * 0.9, height * 0.8], fill=(20, 120, 220, 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def design_jpeg(width: int = 320, height: int = 320) -> bytes:
    image = Image.new("RGB", (width, height), (250, 200, 30))
    ImageDraw.Draw(image).rectangle([40, 40, width - 40, height - 40], fill=(30, 30, 160))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack("!I", len(data)) + kind + data + struct.pack("!I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(width: int = 10_000, height: int = 10_000) -> bytes:
    """A valid 1-bit PNG of `width` x `height` white pixels whose zeros compress to a few kilobytes."""
    row = b"\x00" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack("!IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


def gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", (100, 100)).save(out, "GIF")
    return out.getvalue()


async def upload(node: RunningNode, token: str, data: bytes, content_type: str = "image/png",
                 field: str = "file") -> tuple[int, dict]:
    form = aiohttp.FormData()
    form.add_field(field, data, filename="design", content_type=content_type)
    async with node.http.post(f"{node.url}/api/designs", data=form,
                              headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json(content_type=None)
