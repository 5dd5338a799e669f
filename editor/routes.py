"""HTTP routes for the sound library and challenges."""

from __future__ import annotations

from pathlib import Path

import orjson
from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from editor import challenges, schemas, sounds
from editor.audio import SoundRejected
from editor.challenges import ChallengeNotFound, NewChallenge
from editor.service import Editor
from editor.sounds import AUDIO_MEDIA_TYPE, NewSound, SoundNotFound
from editor.templates import ChallengeTemplate
from feeds import FEEDS
from livecore.accounts import is_adult
from livecore.accounts.session import optional_account, require_account
from livecore.http import (
    NO_NUL,
    Content,
    Id,
    Parameters,
    Problem,
    json_response,
    maximum_setting,
    operation,
    parse_body,
    parse_query,
    path_id,
)
from livecore.node import NODE
from livecore.uploads import FileLimit, read_upload

EDITOR: web.AppKey[Editor] = web.AppKey("editor")
FORM_FIELD_BYTES_MAX = 1024
NAME_CHARS_MAX = 200
SEARCH_CHARS_MAX = 100
DESCRIPTION_CHARS_MAX = 2000
HASHTAG_CHARS_MAX = 50  # as stored (migrations/0003)
_SOUND_UPLOAD = Content.of("multipart/form-data", schema={
    "type": "object", "required": ["file", "title", "artist", "licence"],
    "properties": {
        "file": {"type": "string", "format": "binary", "contentMediaType": "audio/*",
                 "description": "the sound: an audio file FFmpeg reads (MP3, M4A/AAC, WAV, OGG, FLAC), audio only "
                                "(sound_bytes_max, sound_duration_ms_min, sound_duration_ms_max); stored as AAC"},
        "title": {"type": "string", "minLength": 1, "maxLength": NAME_CHARS_MAX},
        "artist": {"type": "string", "minLength": 1, "maxLength": NAME_CHARS_MAX,
                   "description": "who made it: credited on the sound's page and every video that uses it"},
        "licence": {"type": "string", "minLength": 1, "maxLength": NAME_CHARS_MAX,
                    "description": "the terms it may be used under, e.g. CC-BY-4.0 or 'original'"},
    },
})


class SoundFields(BaseModel):
    title: str = Field(min_length=1, max_length=NAME_CHARS_MAX, pattern=NO_NUL)
    artist: str = Field(min_length=1, max_length=NAME_CHARS_MAX, pattern=NO_NUL)
    licence: str = Field(min_length=1, max_length=NAME_CHARS_MAX, pattern=NO_NUL)


class SoundQuery(Parameters):
    q: str | None = Field(default=None, max_length=SEARCH_CHARS_MAX, pattern=NO_NUL,
                          description="words the title or the artist holds")
    sort: sounds.Sort = Field(default="uses", description="uses: most used first; new: newest first")
    offset: int = Field(default=0, ge=0, le=10_000)
    limit: int = Field(default=20, ge=1, json_schema_extra=maximum_setting("sound_page_videos_max"))


class ListPage(Parameters):
    offset: int = Field(default=0, ge=0, le=10_000)
    limit: int = Field(default=20, ge=1, json_schema_extra=maximum_setting("sound_page_videos_max"))


class ChallengeQuery(ListPage):
    q: str | None = Field(default=None, max_length=SEARCH_CHARS_MAX, pattern=NO_NUL,
                          description="words the hashtag or the description holds")


class ChallengeBody(BaseModel):
    hashtag: str = Field(min_length=1, max_length=51, pattern=r"^#?\w{1,50}$",
                         description="one word of letters, digits or _ (at most 50), with or without '#'")
    description: str = Field(min_length=1, max_length=DESCRIPTION_CHARS_MAX, pattern=NO_NUL)
    sound_id: Id
    template: ChallengeTemplate | None = Field(default=None, description="an edit decision list's skeleton that "
                                               "joining pre-fills the editor with (challenge_template_bytes_max)")


def _editor(request: web.Request) -> Editor:
    return request.app[EDITOR]


def _check_limit(request: web.Request, limit: int) -> None:
    limit_max = request.app[NODE].settings.sound_page_videos_max
    if limit > limit_max:
        raise Problem(400, "invalid-field", f"limit: at most {limit_max} (sound_page_videos_max)", field="limit")


@operation("The sound library: search by title or artist, most used or newest first", tag="editor",
           query=SoundQuery, reply=schemas.SoundList)
async def list_sounds(request: web.Request) -> web.Response:
    query = parse_query(request, SoundQuery)
    _check_limit(request, query.limit)
    found = await sounds.list_sounds(request.app[NODE].pool, query.q, query.sort, query.offset, query.limit + 1)
    return json_response({"items": [s.public() for s in found[:query.limit]],
                          "next_offset": query.offset + query.limit if len(found) > query.limit else None})


@operation("Add a sound to the library (multipart/form-data: `file`, `title`, `artist`, `licence`); checked and "
           "stored as AAC before the answer", status=201, auth=True, tag="editor", body=_SOUND_UPLOAD,
           reply=schemas.SoundView,
           problems={400: ["file-required", "malformed-multipart", "invalid-field"], 403: ["not-a-creator"],
                     413: ["sound-too-large"], 415: ["unsupported-media-type"], 422: ["unsupported-sound"],
                     503: ["sounds-busy"]})
async def upload_sound(request: web.Request) -> web.Response:
    account = await require_account(request)
    if "creator" not in account.roles:
        raise Problem(403, "not-a-creator", "only creator accounts can add sounds")
    library = _editor(request).sounds
    library.check_capacity()  # before the upload is read
    staged = library.files.staging()
    try:
        fields = await _read_sound_form(request, staged, request.app[NODE].settings.sound_bytes_max)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    try:
        sound = await library.add(NewSound(fields.title, fields.artist, fields.licence, account.id), staged)
    except SoundRejected as refusal:
        raise Problem(422, "unsupported-sound", str(refusal), field="file") from refusal
    _editor(request).metrics.sounds_added.labels(by="creator").inc()
    return json_response(sound.public(), status=201, headers={"Location": f"/api/sounds/{sound.id}"})


async def _read_sound_form(request: web.Request, staged: Path, bytes_max: int) -> SoundFields:
    """The form's fields, with its `file` part written to `staged` in chunks and refused past `bytes_max`."""
    sent = await read_upload(request, staged, FileLimit(bytes_max, "sound_bytes_max", "sound-too-large", "the sound"),
                             SoundFields.model_fields, FORM_FIELD_BYTES_MAX)
    values = {name: value.strip() for name, value in sent.items()}
    try:
        return SoundFields.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Problem(400, "invalid-field", f"{where}: {first['msg']}", field=where) from exc


@operation("A sound: its title, artist and licence, and the ready videos that use it, newest first", tag="editor",
           query=ListPage, reply=schemas.SoundPage, problems={404: ["sound-not-found"]})
async def get_sound(request: web.Request) -> web.Response:
    query = parse_query(request, ListPage)
    _check_limit(request, query.limit)
    pool = request.app[NODE].pool
    sound_id = path_id(request, "sound-not-found", "sound")
    sound = await sounds.get_sound(pool, sound_id)
    if sound is None:
        raise SoundNotFound(sound_id)
    video_ids = await sounds.videos_using(pool, sound_id, await _adult(request), query.offset, query.limit + 1)
    views = await request.app[FEEDS].public_videos(video_ids[:query.limit])
    return json_response({**sound.public(), "videos": views,
                          "next_offset": query.offset + query.limit if len(video_ids) > query.limit else None})


@operation("A sound's audio (AAC in MP4; range requests)", tag="editor",
           reply=Content.of(AUDIO_MEDIA_TYPE, schema={"type": "string", "format": "binary"}),
           reply_statuses=(206,), responses={206: "the range asked for"},
           problems={404: ["sound-not-found"], 416: ["http-error"],
                     503: ["sound-audio-missing"]})
async def sound_audio(request: web.Request) -> web.StreamResponse:
    library = _editor(request).sounds
    sound_id = path_id(request, "sound-not-found", "sound")
    sound = await sounds.get_sound(library.pool, sound_id)
    if sound is None:
        raise SoundNotFound(sound_id)
    path = await library.local_file(sound)
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=86400, immutable",
                                           "Content-Type": AUDIO_MEDIA_TYPE})


@operation("Challenges: the trending ones first (by their videos' recent engagement), then the newest",
           tag="editor", query=ChallengeQuery, reply=schemas.ChallengeList)
async def list_challenges(request: web.Request) -> web.Response:
    query = parse_query(request, ChallengeQuery)
    _check_limit(request, query.limit)
    editor = _editor(request)
    pool = request.app[NODE].pool
    trending = editor.trending
    found = await challenges.list_challenges(pool, trending.challenge_ids, query.q, query.offset, query.limit + 1)
    sounds_by_id = {s.id: s for s in await sounds.sounds_by_ids(pool, [c.sound_id for c, _ in found])}
    items = [{**c.public(sounds_by_id.get(c.sound_id), count), "trending_rank": _rank(trending.challenge_ids, c.id)}
             for c, count in found[:query.limit]]
    return json_response({"items": items,
                          "next_offset": query.offset + query.limit if len(found) > query.limit else None})


async def _adult(request: web.Request) -> bool:
    """Whether the request comes from an adult (mature videos are listed for adults only)."""
    account = await optional_account(request)
    return account is not None and is_adult(account, request.app[NODE].today())


def _rank(ids: list[int], challenge_id: int) -> int | None:
    return ids.index(challenge_id) + 1 if challenge_id in ids else None


@operation("Start a challenge: a hashtag (unique), a description, a sound and an optional template",
           status=201, auth=True, tag="editor", body=ChallengeBody, reply=schemas.ChallengeView,
           problems={403: ["not-a-creator"], 404: ["sound-not-found"], 409: ["hashtag-taken"],
                     413: ["template-too-large"]})
async def create_challenge(request: web.Request) -> web.Response:
    account = await require_account(request)
    if "creator" not in account.roles:
        raise Problem(403, "not-a-creator", "only creator accounts can start challenges")
    body = await parse_body(request, ChallengeBody)
    template_max = request.app[NODE].settings.challenge_template_bytes_max
    template = body.template.model_dump(exclude_defaults=True) if body.template is not None else None
    if template is not None and len(orjson.dumps(template)) > template_max:
        raise Problem(413, "template-too-large", f"template: at most {template_max} bytes of JSON "
                      "(challenge_template_bytes_max)", field="template")
    pool = request.app[NODE].pool
    hashtag = body.hashtag.removeprefix("#").lower()
    if len(hashtag) > HASHTAG_CHARS_MAX:  # some letters lower-case to two characters (İ to i + a combining dot)
        raise Problem(400, "invalid-field", f"hashtag: at most {HASHTAG_CHARS_MAX} characters once lower-cased",
                      field="hashtag")
    challenge = await challenges.create_challenge(pool, NewChallenge(hashtag, body.description,
                                                                     body.sound_id, template, account.id))
    sound = await sounds.get_sound(pool, challenge.sound_id)
    return json_response({**challenge.public(sound, 0), "trending_rank": None, "videos": [], "next_offset": None},
                         status=201, headers={"Location": f"/api/challenges/{challenge.id}"})


@operation("A challenge with its videos ranked by the engagement they drew", tag="editor", query=ListPage,
           reply=schemas.ChallengeView, problems={404: ["challenge-not-found"]})
async def get_challenge(request: web.Request) -> web.Response:
    query = parse_query(request, ListPage)
    _check_limit(request, query.limit)
    pool = request.app[NODE].pool
    challenge_id = path_id(request, "challenge-not-found", "challenge")
    challenge = await challenges.get_challenge(pool, challenge_id)
    if challenge is None:
        raise ChallengeNotFound(challenge_id)
    ranked = await challenges.ranked_videos(pool, challenge, await _adult(request), query.offset, query.limit + 1)
    views = await request.app[FEEDS].public_videos([v for v, _ in ranked[:query.limit]])
    scores = dict(ranked)
    count = await challenges.video_count(pool, challenge)
    sound = await sounds.get_sound(pool, challenge.sound_id)
    return json_response({
        **challenge.public(sound, count), "trending_rank": _rank(_editor(request).trending.challenge_ids, challenge.id),
        "videos": [{**view, "score": scores[view["id"]]} for view in views],
        "next_offset": query.offset + query.limit if len(ranked) > query.limit else None})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/sounds", list_sounds)
    app.router.add_post("/api/sounds", upload_sound)
    app.router.add_get("/api/sounds/{id}", get_sound)
    app.router.add_get("/api/sounds/{id}/audio", sound_audio)
    app.router.add_get("/api/challenges", list_challenges)
    app.router.add_post("/api/challenges", create_challenge)
    app.router.add_get("/api/challenges/{id}", get_challenge)
