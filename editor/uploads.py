"""Clips and stickers uploaded for edits: checked (PyAV for clips, Pillow for stickers), kept in the data dir of the
node that took them, recorded in `edit_uploads`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import asyncpg
import av

from editor.overlays import is_png_with_size

Kind = Literal["clip", "sticker"]
# Containers a phone or a desktop editor sends video in (FFmpeg demuxer names); pictures are stickers, not clips.
CLIP_FORMATS = {"mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm"}


class UploadRefused(ValueError):
    """Why an upload is not taken: `status` (400, 415) and `slug` for its problem+json."""

    def __init__(self, status: int, slug: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug


@dataclass(frozen=True)
class ClipLimits:
    duration_ms_max: int
    edge_px_max: int


@dataclass(frozen=True)
class Upload:
    id: int
    owner_id: int
    kind: Kind
    file_name: str
    duration_ms: int | None
    width: int
    height: int
    node_id: str


class UploadFiles:
    """Where a node keeps uploads for edits: `<data_dir>/editor/uploads/<name>`, rendered edits beside them."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def upload(self, name: str) -> Path:
        folder = self.root / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    def render_output(self, edit_id: int, attempt: int) -> Path:
        folder = self.root / "renders"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"edit-{edit_id}-{attempt}.mp4"


def probe_clip(path: Path, limits: ClipLimits) -> tuple[int, int, int]:
    """(duration_ms, width, height) of a clip whose first frame decodes; UploadRefused saying why otherwise."""
    try:
        with av.open(str(path)) as container:
            names = set(container.format.name.split(","))
            if not names & CLIP_FORMATS:
                raise UploadRefused(415, "unsupported-media-type", f"file: {container.format.long_name} is not a "
                                    "video container this editor takes (MP4, MOV, Matroska or WebM)")
            if not container.streams.video:
                raise UploadRefused(400, "clip-without-video", "file: the clip has no video track")
            stream = container.streams.video[0]
            duration_ms = _duration_ms(container, stream)
            width, height = stream.width, stream.height
            next(container.decode(stream))
    except av.error.FFmpegError as exc:
        raise UploadRefused(415, "unsupported-media-type", f"file: not a video this editor can read ({exc})") from exc
    except StopIteration as exc:
        raise UploadRefused(400, "clip-without-video", "file: the video track has no frame") from exc
    if duration_ms <= 0:
        raise UploadRefused(400, "clip-too-long", "file: the clip has no duration")
    if duration_ms > limits.duration_ms_max:
        raise UploadRefused(400, "clip-too-long", f"file: the clip lasts {duration_ms} ms; at most "
                            f"{limits.duration_ms_max} ms (edit_clip_duration_ms_max)")
    if max(width, height) > limits.edge_px_max:
        raise UploadRefused(400, "clip-too-large", f"file: the clip is {width}x{height}; its longer side may be at "
                            f"most {limits.edge_px_max} px (edit_clip_edge_px_max)")
    return duration_ms, width, height


def _duration_ms(container: Any, stream: Any) -> int:
    if stream.duration and stream.time_base:
        return int(stream.duration * stream.time_base * 1000)
    if container.duration:
        return int(container.duration / 1000)
    return 0


def probe_sticker(path: Path, edge_px_max: int) -> tuple[int, int]:
    """(width, height) of a PNG sticker; UploadRefused saying why otherwise."""
    try:
        width, height = is_png_with_size(path)
    except ValueError as exc:
        raise UploadRefused(415, "unsupported-media-type", f"file: send a PNG sticker ({exc})") from exc
    if max(width, height) > edge_px_max:
        raise UploadRefused(400, "sticker-too-large", f"file: the sticker is {width}x{height}; its longer side may "
                            f"be at most {edge_px_max} px (edit_sticker_edge_px_max)")
    return width, height


async def record_upload(pool: asyncpg.Pool, owner_id: int, kind: Kind, file_name: str, duration_ms: int | None,
                        width: int, height: int, node_id: str) -> int:
    return await pool.fetchval(
        "INSERT INTO edit_uploads (owner_id, kind, file_name, duration_ms, width, height, node_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        owner_id, kind, file_name, duration_ms, width, height, node_id)


async def upload_by_id(pool: asyncpg.Pool, upload_id: int) -> Upload | None:
    row = await pool.fetchrow("SELECT * FROM edit_uploads WHERE id = $1", upload_id)
    return _from_row(row) if row else None


async def uploads_of(pool: asyncpg.Pool, owner_id: int, upload_ids: list[int]) -> dict[int, Upload]:
    """The owner's uploads among `upload_ids` (others' are not there)."""
    rows = await pool.fetch("SELECT * FROM edit_uploads WHERE owner_id = $1 AND id = ANY($2)", owner_id, upload_ids)
    return {r["id"]: _from_row(r) for r in rows}


def _from_row(r: asyncpg.Record) -> Upload:
    return Upload(r["id"], r["owner_id"], r["kind"], r["file_name"], r["duration_ms"], r["width"], r["height"],
                  r["node_id"])
