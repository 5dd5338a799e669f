"""From an edit decision list to what the renderer needs: its references checked when it is submitted (each
refusal names the field), then, when it is rendered, every source resolved to a local file."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from editor import challenges, edits, sounds, uploads
from editor.decisions import EditClip, EditDecisions, pieces, timeline
from editor.overlays import StickerSpec, TextSpec
from editor.render import PartnerSpec, PieceSpec, RenderPlan
from feeds import videos
from livecore.http import Problem

FRAME_SLACK_MS = 34  # an out point up to a frame past a clip's probed end is its end
UploadFile = Callable[[int], Awaitable[Path]]
VideoFile = Callable[[int], Awaitable[Path]]
SoundFile = Callable[[int], Awaitable[Path]]


def _missing(slug: str, field: str, detail: str) -> Problem:
    """A reference to nothing the author may use: 404 naming the field (as feeds and the sound library answer)."""
    return Problem(404, slug, f"{field}: {detail}", field=field)


async def check_references(pool: asyncpg.Pool, author_id: int, edit: EditDecisions) -> str:
    """Refuse an edit whose clips, videos, sound, stickers or challenge the author may not use; its credits."""
    ids = [c.clip_id for c in edit.clips if c.clip_id] + [s.sticker_id for s in edit.stickers]
    own = await uploads.uploads_of(pool, author_id, ids)
    for index, clip in enumerate(edit.clips):
        if clip.clip_id is not None:
            upload = own.get(clip.clip_id)
            if upload is None or upload.kind != "clip":
                raise _missing("clip-not-found", f"clips.{index}.clip_id", f"you have no clip {clip.clip_id}")
            if upload.duration_ms is not None and clip.out_ms > upload.duration_ms + FRAME_SLACK_MS:
                raise Problem(400, "invalid-field", f"clips.{index}.out_ms: clip {clip.clip_id} lasts "
                              f"{upload.duration_ms} ms", field=f"clips.{index}.out_ms")
        else:
            await _usable_video(pool, author_id, f"clips.{index}.video_id", clip, remix=False)
    for index, sticker in enumerate(edit.stickers):
        upload = own.get(sticker.sticker_id)
        if upload is None or upload.kind != "sticker":
            raise _missing("sticker-not-found", f"stickers.{index}.sticker_id",
                           f"you have no sticker {sticker.sticker_id}")
    if edit.music and not await sounds.sound_exists(pool, edit.music.sound_id):
        raise _missing("sound-not-found", "music.sound_id", f"there is no sound {edit.music.sound_id}")
    if edit.challenge_id and not await challenges.challenge_exists(pool, edit.challenge_id):
        raise _missing("challenge-not-found", "challenge_id", f"there is no challenge {edit.challenge_id}")
    credits = []
    if edit.stitch:
        video = await _usable_video(pool, author_id, "stitch.video_id", edit.stitch, remix=True)
        credits.append(f"stitched from @{video.author_username}'s video {video.id}")
    if edit.duet:
        video = await _usable_video(pool, author_id, "duet.video_id", edit.duet, remix=True)
        credits.append(f"duet with @{video.author_username}'s video {video.id}")
    return "; ".join(credits)


async def _usable_video(pool: asyncpg.Pool, author_id: int, field: str, use: object, remix: bool) -> videos.Video:
    video_id: int = use.video_id  # type: ignore[attr-defined]
    video = await videos.get_video(pool, video_id)
    if video is None or video.state != "ready":
        raise _missing("video-not-found", field, f"there is no ready video {video_id}")
    if video.author_id != author_id:
        if not remix:
            raise Problem(403, "not-your-video", f"{field}: video {video_id} is another creator's; use it in a "
                          "stitch or a duet", field=field)
        if not await edits.remix_allowed(pool, video.author_id):
            raise Problem(403, "remix-not-allowed", f"{field}: @{video.author_username} does not allow duets or "
                          "stitches of their videos", field=field)
    out_ms = getattr(use, "out_ms", None)
    if out_ms is not None and video.duration_ms is not None and out_ms > video.duration_ms + FRAME_SLACK_MS:
        where = field.rsplit(".", 1)[0] + ".out_ms"
        raise Problem(400, "invalid-field", f"{where}: video {video_id} lasts {video.duration_ms} ms", field=where)
    return video


async def build_plan(edit: EditDecisions, upload_file: UploadFile, video_file: VideoFile, sound_file: SoundFile,
                     output: Path) -> RenderPlan:
    """The render plan with every source a local file (each resolver raises FileNotFoundError for a file this node
    cannot have)."""
    placements, length_ms = timeline(edit)
    specs: list[PieceSpec] = []
    ordered = pieces(edit)
    for index, (piece, placed) in enumerate(zip(ordered, placements, strict=True)):
        if isinstance(piece, EditClip) and piece.clip_id is not None:
            path = await upload_file(piece.clip_id)
        else:
            assert piece.video_id is not None
            path = await video_file(piece.video_id)
        speed = piece.speed if isinstance(piece, EditClip) else 1.0
        fade_out = placements[index + 1].fade_in_ms if index + 1 < len(placements) else 0
        specs.append(PieceSpec(str(path), piece.in_ms, speed, piece.volume, placed.start_ms, placed.length_ms,
                               placed.fade_in_ms, fade_out))
    duet = (PartnerSpec(str(await video_file(edit.duet.video_id)), edit.duet.in_ms, edit.duet.volume)
            if edit.duet else None)
    music = (PartnerSpec(str(await sound_file(edit.music.sound_id)), edit.music.start_ms, edit.music.volume)
             if edit.music else None)
    texts = [TextSpec(t.text, t.x, t.y, t.size_px, t.colour, t.start_ms, t.end_ms or length_ms) for t in edit.texts]
    stickers = [StickerSpec(str(await upload_file(s.sticker_id)), s.x, s.y, s.width_px, s.start_ms,
                            s.end_ms or length_ms) for s in edit.stickers]
    return RenderPlan(pieces=specs, length_ms=length_ms, output=str(output), duet=duet, music=music, texts=texts,
                      stickers=stickers)
