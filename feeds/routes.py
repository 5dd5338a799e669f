"""HTTP routes for feeds: videos (upload, read, files), the recording choice, engagement, the two feeds."""

from __future__ import annotations

import secrets
from pathlib import Path

from aiohttp import web
from pydantic import BaseModel, Field

from feeds import engagements, schemas, videos
from feeds.cursors import decode_before, encode_before
from feeds.service import Feeds
from feeds.videoholders import holder_of
from feeds.viewers import load_viewer
from livecore.accounts.session import optional_account, require_account
from livecore.http import (
    NO_NUL,
    Content,
    Id,
    Parameters,
    Problem,
    json_response,
    max_items_setting,
    maximum_setting,
    operation,
    parse_body,
    parse_query,
    path_id,
)
from livecore.media import MEDIA
from livecore.node import NODE
from livecore.streams import get_stream
from livecore.uploads import FileLimit, read_upload

FEEDS: web.AppKey[Feeds] = web.AppKey("feeds")
CAPTION_CHARS_MAX = 2200
FORM_FIELD_BYTES_MAX = 16 * 1024
CURSOR = r"^[A-Za-z0-9_-]{1,512}$"
EVENT_ID = r"^[A-Za-z0-9_.:-]{1,100}$"
WATCH_MS_MAX = 24 * 3600 * 1000
_VIDEO_UPLOAD = Content.of("multipart/form-data", schema={
    "type": "object", "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "contentMediaType": "video/mp4",
                 "description": "the video: an MP4 (video_bytes_max, video_duration_ms_max); H.264/AAC is kept as "
                                "it is, anything else transcoded once"},
        "caption": {"type": "string", "maxLength": CAPTION_CHARS_MAX},
        "hashtags": {"type": "string", "description": "words with or without '#', separated by spaces or commas "
                                                      "(video_hashtags_max)"},
        "sound_id": {"type": "integer", "minimum": 1}, "challenge_id": {"type": "integer", "minimum": 1},
        "mature": {"type": "boolean", "description": "for adults only"},
    },
})
_FILES = {"video.mp4": "video/mp4", "thumbnail.jpg": "image/jpeg"}


class VideoFields(BaseModel):
    caption: str = Field(default="", max_length=CAPTION_CHARS_MAX, pattern=NO_NUL)
    hashtags: str = Field(default="", max_length=FORM_FIELD_BYTES_MAX, pattern=NO_NUL)
    sound_id: Id | None = None
    challenge_id: Id | None = None
    mature: bool = False


class Page(Parameters):
    cursor: str | None = Field(default=None, pattern=CURSOR, description="next_cursor of the page before (opaque)")
    limit: int = Field(default=20, ge=1, json_schema_extra=maximum_setting("feed_page_items_max"))


class RecordingChoice(BaseModel):
    post_recording: bool = Field(description="false: the stream's recording is not posted as a video when it ends")


class EngagementEvent(BaseModel):
    id: str = Field(pattern=EVENT_ID, description="the client's id for this event: a retry with the same id counts "
                                                  "once")
    video_id: Id
    kind: engagements.Kind
    watch_ms: int | None = Field(default=None, ge=0, le=WATCH_MS_MAX,
                                 description="how long it was watched (kind watch); completion is this over its "
                                             "duration")


class EngagementBatch(BaseModel):
    events: list[EngagementEvent] = Field(min_length=1, json_schema_extra=max_items_setting(
        "engagement_events_per_batch_max"))


class VideoFile(BaseModel):
    id: Id
    name: str = Field(description="video.mp4 or thumbnail.jpg")


def _feeds(request: web.Request) -> Feeds:
    return request.app[FEEDS]


@operation("Upload a video (multipart/form-data: `file`, an MP4; `caption`, `hashtags`, `sound_id`, "
           "`challenge_id`, `mature`); it is checked and, where needed, transcoded in the background",
           status=201, auth=True, tag="feeds", body=_VIDEO_UPLOAD, reply=schemas.NewVideoView,
           problems={400: ["file-required", "malformed-multipart", "invalid-field"], 403: ["not-a-creator"],
                     404: ["sound-not-found", "challenge-not-found"],
                     413: ["video-too-large"], 415: ["unsupported-media-type"], 503: ["videos-busy"]})
async def upload_video(request: web.Request) -> web.Response:
    account = await require_account(request)
    if "creator" not in account.roles:
        raise Problem(403, "not-a-creator", "only creator accounts can post videos")
    feeds = _feeds(request)
    feeds.processor.check_capacity()  # before the upload is read
    staged = feeds.files.staging(f"{secrets.token_hex(12)}.upload")
    try:
        fields = await _read_upload(request, staged, request.app[NODE].settings.video_bytes_max)
        await feeds.check_upload(fields.sound_id, fields.challenge_id)
        hashtags = videos.normalized_hashtags(fields.hashtags)
        hashtags_max = request.app[NODE].settings.video_hashtags_max
        if len(hashtags) > hashtags_max:
            raise Problem(400, "invalid-field", f"hashtags: at most {hashtags_max} (video_hashtags_max)",
                          field="hashtags")
        video_id = await videos.create_video(feeds.node.pool, account.id, fields.caption, hashtags,
                                             fields.sound_id, fields.challenge_id, fields.mature,
                                             node_id=feeds.node.settings.node_id)
        assert video_id is not None
        feeds.processor.submit(video_id, staged, remove_source=True)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return json_response({"id": video_id, "state": "processing"}, status=201)


async def _read_upload(request: web.Request, staged: Path, bytes_max: int) -> VideoFields:
    """The form's fields, with its `file` part written to `staged` in chunks and refused past `bytes_max`."""
    values = await read_upload(request, staged, FileLimit(bytes_max, "video_bytes_max", "video-too-large",
                                                          "the video"),
                               VideoFields.model_fields, FORM_FIELD_BYTES_MAX)
    return _validated_fields(values)


def _validated_fields(values: dict[str, str]) -> VideoFields:
    data: dict[str, object] = dict(values)
    if "mature" in data:
        data["mature"] = str(data["mature"]).strip().lower() in ("true", "1", "on", "yes")
    try:
        return VideoFields.model_validate(data)
    except ValueError as exc:
        raise Problem(400, "invalid-field", f"the form's fields are not valid: {exc}") from exc


@operation("A video: its state while processing, then where to play it", tag="feeds", reply=schemas.VideoView,
           problems={404: ["video-not-found"]})
async def get_video(request: web.Request) -> web.Response:
    video = await videos.get_video(request.app[NODE].pool, path_id(request, "video-not-found", "video"))
    if video is None:
        raise Problem(404, "video-not-found", f"there is no video {request.match_info['id']}")
    return json_response(video.public())


@operation("A user's videos, newest first (their own unready ones too, for them)", tag="feeds",
           reply=schemas.VideoPage, query=Page, problems={400: ["bad-cursor"], 404: ["user-not-found"]})
async def user_videos(request: web.Request) -> web.Response:
    node = request.app[NODE]
    page = parse_query(request, Page)
    user_id = path_id(request, "user-not-found", "user")
    if await node.accounts.get(user_id) is None:
        raise Problem(404, "user-not-found", f"there is no user {user_id}")
    _check_limit(node.settings.feed_page_items_max, page.limit)
    before = decode_before(page.cursor, "videos") if page.cursor else None
    viewer = await _optional_account_id(request)
    found = await videos.author_videos(node.pool, user_id, before, page.limit + 1, include_unready=viewer == user_id)
    more = len(found) > page.limit
    found = found[:page.limit]
    return json_response({"items": [v.public() for v in found],
                          "next_cursor": encode_before("videos", found[-1].id) if more else None})


@operation("A video's file: the MP4 (range requests) or its thumbnail", tag="feeds", path=VideoFile,
           reply=Content.of(*_FILES.values(), schema={"type": "string", "format": "binary"}),
           reply_statuses=(206,), responses={206: "the range asked for"},
           problems={404: ["video-not-found", "not-found"], 416: ["http-error"],
                     503: ["video-node-gone", "video-node-unreachable", "video-node-failed",
                           "video-cache-too-small"]})
async def video_file(request: web.Request) -> web.StreamResponse:
    feeds = _feeds(request)
    video_id = path_id(request, "video-not-found", "video")
    name = request.match_info["name"]
    if name not in _FILES:
        raise Problem(404, "not-found", f"there is no video file {name!r}")
    path = await _video_file_path(request, feeds, video_id, name)
    # aiohttp answers Range (206, 416) and conditional requests itself.
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=86400, immutable",
                                           "Content-Type": _FILES[name]})


async def _video_file_path(request: web.Request, feeds: Feeds, video_id: int, name: str) -> Path:
    """The file on this node: its own, or a copy of the holder's (fetched once, see livecore/media/ownercopies.py)."""
    own = feeds.files.video(video_id) if name == "video.mp4" else feeds.files.thumbnail(video_id)
    if own.is_file():
        feeds.metrics.video_files_served.labels(source="own").inc()
        return own
    link = request.app[MEDIA].link
    ready, holder = await holder_of(feeds.node.pool, video_id)
    # A node's own request is answered from its disk only, so two nodes never send one request back and forth.
    if not ready or holder is None or holder == feeds.node.settings.node_id or link.sender(request) is not None:
        raise Problem(404, "video-not-found", f"video {video_id} has no {name} (yet)")
    path = await feeds.holders.local_copy(link, holder, f"{video_id}/{name}", f"/videos/{video_id}/{name}")
    feeds.metrics.video_files_served.labels(source="copy").inc()
    return path


@operation("Whether your stream's recording is posted as a video when it ends (it is unless you say no)",
           auth=True, tag="feeds", body=RecordingChoice, reply=schemas.RecordingChoiceView,
           problems={403: ["not-your-stream"], 404: ["stream-not-found"]})
async def choose_recording(request: web.Request) -> web.Response:
    node = request.app[NODE]
    account = await require_account(request)
    stream = await get_stream(node.pool, path_id(request, "stream-not-found", "stream"))
    if stream is None:
        raise Problem(404, "stream-not-found", f"there is no stream {request.match_info['id']}")
    if stream.creator_id != account.id:
        raise Problem(403, "not-your-stream", "only the stream's creator chooses what happens to its recording")
    body = await parse_body(request, RecordingChoice)
    if body.post_recording:
        await videos.opt_back_in_to_recording(node.pool, stream.id)
    else:
        await videos.opt_out_of_recording(node.pool, stream.id, account.id)
    return json_response({"stream_id": stream.id, "post_recording": body.post_recording})


@operation("Engagement from the feed page, a batch at a time: seen, watch (watch_ms), like, unlike, share, "
           "comment, follow, not_interested, report; each event id counts once", auth=True, tag="feeds",
           body=EngagementBatch, reply=schemas.EngagementAnswer)
async def record_engagements(request: web.Request) -> web.Response:
    node = request.app[NODE]
    account = await require_account(request)
    batch = await parse_body(request, EngagementBatch)
    limit = node.settings.engagement_events_per_batch_max
    if len(batch.events) > limit:
        raise Problem(400, "invalid-field", f"events: at most {limit} in one batch "
                      "(engagement_events_per_batch_max)", field="events")
    events = [engagements.Event(e.id, e.video_id, e.kind, e.watch_ms) for e in batch.events]
    result = await _feeds(request).record_engagements(account, events)
    return json_response(result.public())


@operation("The Following feed: followed creators live now first, then their videos, newest first",
           auth=True, tag="feeds", reply=schemas.FeedPage, query=Page, problems={400: ["bad-cursor"]})
async def following_feed(request: web.Request) -> web.Response:
    node = request.app[NODE]
    account = await require_account(request)
    page = parse_query(request, Page)
    _check_limit(node.settings.feed_page_items_max, page.limit)
    viewer = await load_viewer(node, account)
    return json_response(await _feeds(request).following_feed(viewer, page.cursor, page.limit))


@operation("The For You feed: videos picked for you (and creators live now), learning from every swipe; no video "
           "twice in the session the cursor carries", auth=True, tag="feeds", reply=schemas.FeedPage, query=Page,
           problems={400: ["bad-cursor"]})
async def for_you_feed(request: web.Request) -> web.Response:
    node = request.app[NODE]
    account = await require_account(request)
    page = parse_query(request, Page)
    _check_limit(node.settings.feed_page_items_max, page.limit)
    viewer = await load_viewer(node, account)
    return json_response(await _feeds(request).for_you_feed(viewer, page.cursor, page.limit))


def _check_limit(limit_max: int, limit: int) -> None:
    if limit > limit_max:
        raise Problem(400, "invalid-field", f"limit: at most {limit_max} (feed_page_items_max)", field="limit")


async def _optional_account_id(request: web.Request) -> int | None:
    account = await optional_account(request)
    return account.id if account else None


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/videos", upload_video)
    app.router.add_get("/api/videos/{id}", get_video)
    app.router.add_get("/api/users/{id}/videos", user_videos)
    app.router.add_get("/videos/{id}/{name}", video_file)
    app.router.add_put("/api/streams/{id}/recording", choose_recording)
    app.router.add_post("/api/engagements", record_engagements)
    app.router.add_get("/api/feed/following", following_feed)
    app.router.add_get("/api/feed/for-you", for_you_feed)
