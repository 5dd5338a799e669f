"""HTTP routes for render jobs: clip and sticker uploads, submitting an edit decision list, following and cancelling
its render, and a creator's choice whether others may duet with or stitch their videos."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from editor import edits, uploads
from editor.decisions import EditDecisions
from editor.rendering import Renders
from livecore.accounts.session import require_account
from livecore.http import Content, Id, Problem, json_response, operation, parse_body, path_id
from livecore.node import NODE
from livecore.uploads import FileLimit, read_upload

RENDERS: web.AppKey[Renders] = web.AppKey("editor_renders")


def _upload_form(media_type: str, description: str) -> Content:
    return Content.of("multipart/form-data", schema={
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary", "contentMediaType": media_type,
                                "description": description}}})


_CLIP_UPLOAD = _upload_form("video/*", "a clip: MP4, MOV, Matroska or WebM with a video track (edit_clip_bytes_max, "
                                       "edit_clip_duration_ms_max, edit_clip_edge_px_max)")
_STICKER_UPLOAD = _upload_form("image/png", "a sticker: a PNG, transparent where it should not cover the video "
                                            "(edit_sticker_bytes_max, edit_sticker_edge_px_max)")


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClipView(Answer):
    clip_id: Id
    duration_ms: int
    width: int
    height: int


class StickerView(Answer):
    sticker_id: Id
    width: int
    height: int


class NewEditView(Answer):
    id: Id
    state: Literal["queued"]


class EditView(Answer):
    id: Id
    state: edits.State
    progress: float = Field(ge=0, le=1, description="how much of the render is done")
    attempts: int = Field(description="renders started (a render whose process died is tried again)")
    length_ms: int
    video_id: int | None = Field(description="the feed video the edit became, once done")
    error: str | None = Field(description="why the render failed")
    credits: str = Field(description="whose videos the edit stitches or duets with")
    created_at: str


class RemixConsent(BaseModel):
    allow_remix: bool = Field(description="false: nobody may duet with or stitch your videos")


class RemixConsentView(Answer):
    allow_remix: bool


def _renders(request: web.Request) -> Renders:
    return request.app[RENDERS]


@operation("Upload a clip for edits (multipart/form-data `file`); checked with PyAV", status=201, auth=True,
           tag="editor", body=_CLIP_UPLOAD, reply=ClipView,
           problems={400: ["file-required", "malformed-multipart", "clip-without-video", "clip-too-long",
                           "clip-too-large"], 413: ["upload-too-large"], 415: ["unsupported-media-type"]})
async def upload_clip(request: web.Request) -> web.Response:
    account = await require_account(request)
    renders = _renders(request)
    s = renders.node.settings
    name = f"{secrets.token_hex(12)}.clip"
    path = renders.files.upload(name)
    try:
        await _receive_file(request, path, s.edit_clip_bytes_max, "edit_clip_bytes_max")
        duration_ms, width, height = await _checked(uploads.probe_clip, path, uploads.ClipLimits(
            s.edit_clip_duration_ms_max, s.edit_clip_edge_px_max))
        clip_id = await uploads.record_upload(renders.node.pool, account.id, "clip", name, duration_ms, width, height,
                                              s.node_id)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return json_response({"clip_id": clip_id, "duration_ms": duration_ms, "width": width, "height": height},
                         status=201)


@operation("Upload a sticker for edits (multipart/form-data `file`, a PNG with transparency)", status=201,
           auth=True, tag="editor", body=_STICKER_UPLOAD, reply=StickerView,
           problems={400: ["file-required", "malformed-multipart", "sticker-too-large"], 413: ["upload-too-large"],
                     415: ["unsupported-media-type"]})
async def upload_sticker(request: web.Request) -> web.Response:
    account = await require_account(request)
    renders = _renders(request)
    s = renders.node.settings
    name = f"{secrets.token_hex(12)}.png"
    path = renders.files.upload(name)
    try:
        await _receive_file(request, path, s.edit_sticker_bytes_max, "edit_sticker_bytes_max")
        width, height = await _checked(uploads.probe_sticker, path, s.edit_sticker_edge_px_max)
        sticker_id = await uploads.record_upload(renders.node.pool, account.id, "sticker", name, None, width, height,
                                                 s.node_id)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return json_response({"sticker_id": sticker_id, "width": width, "height": height}, status=201)


async def _checked(check, *args):  # type: ignore[no-untyped-def]
    try:
        return await asyncio.to_thread(check, *args)
    except uploads.UploadRefused as refusal:
        raise Problem(refusal.status, refusal.slug, str(refusal), field="file") from refusal


async def _receive_file(request: web.Request, target: Path, bytes_max: int, setting: str) -> None:
    """Write the form's `file` part to `target` in chunks, refused past `bytes_max`."""
    await read_upload(request, target, FileLimit(bytes_max, setting, "upload-too-large"))


@operation("Render an edit decision list into a feed video: answered at once (202) while it renders in the "
           "background; follow it with GET /api/edits/{id}", status=202, auth=True, tag="editor",
           body=EditDecisions, reply=NewEditView,
           problems={403: ["not-your-video", "remix-not-allowed"],
                     404: ["clip-not-found", "sticker-not-found", "video-not-found", "sound-not-found",
                           "challenge-not-found"], 503: ["edits-busy"]})
async def submit_edit(request: web.Request) -> web.Response:
    account = await require_account(request)
    decisions = await parse_body(request, EditDecisions)
    edit = await _renders(request).submit(account.id, decisions)
    return json_response({"id": edit.id, "state": edit.state}, status=202)


async def _own_edit(request: web.Request) -> edits.Edit:
    account = await require_account(request)
    edit_id = path_id(request, "edit-not-found", "edit")
    edit = await edits.get_edit(request.app[NODE].pool, edit_id)
    if edit is None or edit.author_id != account.id:
        raise Problem(404, "edit-not-found", f"you have no edit {edit_id}")
    return edit


@operation("An edit's render: its state, progress (0 to 1), and the video it became once done", auth=True,
           tag="editor", reply=EditView, problems={404: ["edit-not-found"]})
async def get_edit(request: web.Request) -> web.Response:
    return json_response((await _own_edit(request)).public())


@operation("Cancel an edit's render (queued or rendering); a finished edit is 409", auth=True, tag="editor",
           reply=EditView, problems={404: ["edit-not-found"], 409: ["edit-finished"]})
async def cancel_edit(request: web.Request) -> web.Response:
    edit = await _own_edit(request)
    cancelled = await _renders(request).cancel(edit.id)
    if cancelled is None:
        raise Problem(409, "edit-finished", f"edit {edit.id} is {edit.state}; only a queued or rendering edit can "
                      "be cancelled")
    return json_response(cancelled.public())


@operation("Whether others may duet with or stitch your videos (they may unless you say no)", auth=True,
           tag="editor", body=RemixConsent, reply=RemixConsentView)
async def set_remix_consent(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await parse_body(request, RemixConsent)
    await edits.set_remix_allowed(request.app[NODE].pool, account.id, body.allow_remix)
    return json_response({"allow_remix": body.allow_remix})


def add_edit_routes(app: web.Application) -> None:
    app.router.add_post("/api/edits/clips", upload_clip)
    app.router.add_post("/api/edits/stickers", upload_sticker)
    app.router.add_put("/api/remix-consent", set_remix_consent)
    app.router.add_post("/api/edits", submit_edit)
    app.router.add_get("/api/edits/{id}", get_edit)
    app.router.add_delete("/api/edits/{id}", cancel_edit)
