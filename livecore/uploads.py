"""Multipart uploads: a form's `file` part streamed to disk in chunks, its short text fields read beside it.

Every upload endpoint (videos, sounds, edit clips and stickers) reads its body this way, so they refuse the same
things with the same problems: not multipart (415 `unsupported-media-type`), unreadable (400 `malformed-multipart`),
no `file` (400 `file-required`), a file past its limit (413, the caller's slug, naming the setting), a text field
past its limit (400 `invalid-field`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from aiohttp import BodyPartReader, web

from livecore.http import Problem

UPLOAD_CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True)
class FileLimit:
    """How large the `file` part may be, and how a larger one is refused."""

    bytes_max: int
    setting: str  # the setting that sets bytes_max, named in the refusal
    too_large: str  # the 413's problem slug
    what: str = "the file"  # how the refusal calls it ("the video", "the sound")


async def read_upload(request: web.Request, target: Path, limit: FileLimit, fields: Collection[str] = (),
                      field_bytes_max: int = 1024) -> dict[str, str]:
    """Write the form's `file` part to `target` and return the text parts named in `fields` (as sent; other parts
    are skipped). A refusal may leave a partial `target`: the caller removes it."""
    if request.content_type != "multipart/form-data":
        raise Problem(415, "unsupported-media-type", f"send {limit.what} as multipart/form-data with a `file` field")
    values: dict[str, str] = {}
    has_file = False
    try:
        async for part in await request.multipart():
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.name == "file":
                has_file = True
                await _write(part, target, limit)
            elif part.name in fields:
                raw = await part.read_chunk(field_bytes_max + 1)
                if len(raw) > field_bytes_max:
                    raise Problem(400, "invalid-field", f"{part.name}: too long", field=part.name)
                values[part.name] = raw.decode("utf-8", errors="replace")
    except (ValueError, AssertionError, RuntimeError) as exc:
        raise Problem(400, "malformed-multipart", f"the multipart body could not be read: {exc}") from exc
    if not has_file:
        raise Problem(400, "file-required", f"send {limit.what} in a form field named `file`", field="file")
    return values


async def _write(part: BodyPartReader, target: Path, limit: FileLimit) -> None:
    size = 0
    with target.open("wb") as out:
        while chunk := await part.read_chunk(UPLOAD_CHUNK_BYTES):
            size += len(chunk)
            if size > limit.bytes_max:
                raise Problem(413, limit.too_large, f"{limit.what} is larger than {limit.bytes_max} bytes "
                              f"({limit.setting})", field="file", bytes_max=limit.bytes_max)
            out.write(chunk)
