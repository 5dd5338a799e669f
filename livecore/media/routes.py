"""HTTP routes of the media plane: WHIP ingest and WHEP playback (RFC 9725 and the WHEP draft), HLS files."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from livecore.http import Content, Id, Problem, operation, path_id
from livecore.media.plane import RELAY_HEADER, MediaPlane

MEDIA = web.AppKey("media", MediaPlane)
SDP_TYPE = "application/sdp"
TRICKLE_TYPE = "application/trickle-ice-sdpfrag"
_SDP = Content.of(SDP_TYPE)
_SDP_ANSWER = {"Location": "the session's URL: PATCH it to trickle, DELETE it to stop"}
_SESSION_NOT_FOUND = {404: ["stream-not-found", "session-not-found"]}


class HlsFile(BaseModel):
    id: Id
    name: str = Field(pattern=r"^[^./][^/]*\.(m3u8|ts)$", examples=["index.m3u8"],
                      description="index.m3u8 or one of the segments it lists")


class MediaFile(BaseModel):
    id: Id
    name: Literal["recording.mp4", "thumbnail.jpg"]


def _stream_id(request: web.Request) -> int:
    return path_id(request, "stream-not-found", "stream")


async def _offer(request: web.Request) -> str:
    if request.content_type != SDP_TYPE:
        raise Problem(415, "unsupported-media-type", f"expected {SDP_TYPE}, got {request.content_type or 'nothing'}")
    return await request.text()


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _sdp_answer(sdp: str, location: str) -> web.Response:
    return web.Response(status=201, text=sdp, content_type=SDP_TYPE,
                        headers={"Location": location, "Access-Control-Expose-Headers": "Location"})


@operation("WHIP: publish to a stream (bearer = stream key), SDP offer in, SDP answer out", status=201,
           body=_SDP, reply=_SDP, reply_headers=_SDP_ANSWER, security=("stream_key",), tag="media",
           problems={400: ["malformed-sdp"], 401: ["bad-stream-key"], 404: ["stream-not-found"],
                     409: ["stream-ended", "already-publishing"], 415: ["unsupported-media-type"]})
async def whip_publish(request: web.Request) -> web.Response:
    stream_id = _stream_id(request)
    bearer = _bearer(request)
    if not bearer:
        raise Problem(401, "bad-stream-key", "send the stream key as `Authorization: Bearer <key>`")
    session, sdp = await request.app[MEDIA].publish(stream_id, bearer, await _offer(request))
    return _sdp_answer(sdp, f"/whip/{stream_id}/{session}")


@operation("WHIP: trickle ICE candidates", status=204, tag="media", body=Content.of(TRICKLE_TYPE),
           problems={**_SESSION_NOT_FOUND, 400: ["malformed-sdp"], 415: ["unsupported-media-type"]})
async def whip_trickle(request: web.Request) -> web.Response:
    if request.content_type != TRICKLE_TYPE:
        raise Problem(415, "unsupported-media-type", f"expected {TRICKLE_TYPE}")
    await request.app[MEDIA].trickle(_stream_id(request), request.match_info["session"], await request.text())
    return web.Response(status=204)


@operation("WHIP: stop publishing; the stream ends", tag="media", problems=_SESSION_NOT_FOUND)
async def whip_delete(request: web.Request) -> web.Response:
    await request.app[MEDIA].unpublish(_stream_id(request), request.match_info["session"])
    return web.Response(status=200)


@operation("WHEP: watch a stream, SDP offer in, SDP answer out; 503 with hls_url when full", status=201,
           body=_SDP, reply=_SDP, reply_headers=_SDP_ANSWER, tag="media",
           problems={400: ["malformed-sdp"], 404: ["stream-not-found", "stream-not-live"],
                     415: ["unsupported-media-type"], 502: ["relay-failed"],
                     503: ["over-capacity", "owner-unreachable"]})
async def whep_watch(request: web.Request) -> web.Response:
    stream_id = _stream_id(request)
    relay = RELAY_HEADER in request.headers
    session, sdp = await request.app[MEDIA].watch(stream_id, await _offer(request), relay=relay)
    return _sdp_answer(sdp, f"/whep/{stream_id}/{session}")


@operation("WHEP: trickle ICE candidates (accepted; the answer already carries every candidate)", status=204,
           tag="media", body=Content.of(TRICKLE_TYPE), problems={404: ["stream-not-found"]})
async def whep_trickle(request: web.Request) -> web.Response:
    _stream_id(request)
    return web.Response(status=204)


@operation("WHEP: stop watching", tag="media", problems=_SESSION_NOT_FOUND)
async def whep_delete(request: web.Request) -> web.Response:
    await request.app[MEDIA].stop_watching(_stream_id(request), request.match_info["session"])
    return web.Response(status=200)


_HLS_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t"}
_MEDIA_FILES = {"recording.mp4": "video/mp4", "thumbnail.jpg": "image/jpeg"}


@operation("HLS for large audiences: index.m3u8 (short-lived cache) and its segments (immutable)", tag="media",
           path=HlsFile, reply=Content.of(*_HLS_TYPES.values(), schema={"type": "string", "format": "binary"}),
           reply_headers={"Cache-Control": "how long a CDN may keep it"},
           problems={404: ["stream-not-found", "not-found", "hls-not-ready"]})
async def hls_file(request: web.Request) -> web.StreamResponse:
    plane = request.app[MEDIA]
    stream_id = _stream_id(request)
    name = request.match_info["name"]
    suffix = name[name.rfind("."):] if "." in name else ""
    if suffix not in _HLS_TYPES or "/" in name or name.startswith("."):
        raise Problem(404, "not-found", f"there is no HLS file {name!r}")
    path = plane.files(stream_id).hls / name
    if not path.is_file():
        raise Problem(404, "hls-not-ready", f"stream {stream_id} has no HLS file {name} (yet)")
    live = stream_id in plane.outputs
    if suffix == ".m3u8":
        cache = "public, max-age=1" if live else "public, max-age=3600"
    else:
        cache = "public, max-age=86400, immutable"
    return web.FileResponse(path, headers={"Cache-Control": cache, "Content-Type": _HLS_TYPES[suffix],
                                           "Access-Control-Allow-Origin": "*"})


@operation("A stream's recording (MP4, for replay) or its latest thumbnail (JPEG)", tag="media", path=MediaFile,
           reply=Content.of(*_MEDIA_FILES.values(), schema={"type": "string", "format": "binary"}),
           problems={404: ["stream-not-found", "not-found"], 409: ["still-recording"]})
async def media_file(request: web.Request) -> web.StreamResponse:
    plane = request.app[MEDIA]
    stream_id = _stream_id(request)
    name = request.match_info["name"]
    if name not in _MEDIA_FILES:
        raise Problem(404, "not-found", f"there is no media file {name!r}")
    path = plane.files(stream_id).directory / name
    if not path.is_file():
        raise Problem(404, "not-found", f"stream {stream_id} has no {name}")
    if name == "recording.mp4" and stream_id in plane.outputs:
        raise Problem(409, "still-recording", "the recording is available once the stream ends")
    cache = "public, max-age=5" if name == "thumbnail.jpg" else "public, max-age=86400"
    return web.FileResponse(path, headers={"Cache-Control": cache, "Content-Type": _MEDIA_FILES[name]})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/hls/{id}/{name}", hls_file)
    app.router.add_get("/media/{id}/{name}", media_file)
    app.router.add_post("/whip/{id}", whip_publish)
    app.router.add_patch("/whip/{id}/{session}", whip_trickle)
    app.router.add_delete("/whip/{id}/{session}", whip_delete)
    app.router.add_post("/whep/{id}", whep_watch)
    app.router.add_patch("/whep/{id}/{session}", whep_trickle)
    app.router.add_delete("/whep/{id}/{session}", whep_delete)
