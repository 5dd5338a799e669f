"""HTTP routes of the media plane: WHIP ingest and WHEP playback (RFC 9725 and the WHEP draft), HLS files.

A session request (PATCH, DELETE) that a load balancer sends to a node other than the session's is passed on to that
node, and so is an HLS request to a node that does not make the stream's files (see `cluster.py`).

WHIP and WHEP answer `OPTIONS` on their endpoints and sessions (what they accept, and the ICE servers to use) and
are open to pages on other origins (`ingest_cors_origins`, `playback_cors_origins`; see `cors_rules`), since
publishers and players are embedded in other sites.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from aiohttp import web
from multidict import CIMultiDict
from pydantic import BaseModel, Field

from livecore.config import Settings
from livecore.cors import CorsRule, parse_origins
from livecore.http import ANONYMOUS, Content, Header, Id, Parameters, Problem, operation, parse_headers, path_id
from livecore.media.cluster import NODE_HEADER, PROOF_HEADER
from livecore.media.plane import MediaPlane
from livecore.media.room import SessionAnswer
from livecore.media.trickle import TRICKLE_TYPE

MEDIA = web.AppKey("media", MediaPlane)
SDP_TYPE = "application/sdp"
# Several WHIP clients decide whether to trickle candidates from the methods an OPTIONS on the endpoint allows, so
# endpoints and sessions both list every method of the protocol.
WEBRTC_METHODS = "OPTIONS, POST, PATCH, DELETE"
WEBRTC_REQUEST_HEADERS = "Authorization, Content-Type, If-Match, ETag"  # ETag: a PATCH header some clients send
WEBRTC_EXPOSED_HEADERS = "Location, Link, ETag, Accept-Post, Accept-Patch, Access-Control-Allow-Methods"
_ENTITY_TAG = r'(W/)?"[\x21\x23-\x7e]*"'  # RFC 9110 section 8.8.3, ASCII only
_SDP = Content.of(SDP_TYPE)
_LINK = Header("one per STUN/TURN server of media_ice_servers (RFC 9725 section 4.6)", required=False)
_SDP_ANSWER = {"Location": "the session's URL: PATCH it to trickle, DELETE it to stop",
               "ETag": "the session's entity tag, for If-Match on its PATCH requests", "Link": _LINK}
_SESSION_NOT_FOUND = {404: ["stream-not-found", "session-not-found"]}
_PATCHED = {**_SESSION_NOT_FOUND, 400: ["malformed-sdp"], 412: ["etag-mismatch"], 415: ["unsupported-media-type"],
            422: ["ice-restart-unsupported"]}
_PASSED_ON = ["node-unreachable", "node-answer-too-large"]  # another node did not answer, or too much (cluster.py)
# An ended stream's file copied from the node that made it failed (ownercopies.py).
_COPY_FAILED = ["media-node-gone", "media-node-unreachable", "media-node-failed", "media-cache-too-small"]
_ENDPOINT_OPTIONS = {"Accept-Post": "application/sdp: what POST takes", "Allow": "OPTIONS, POST"}


class HlsFile(BaseModel):
    id: Id
    name: str = Field(pattern=r"^[^./][^/]*\.(m3u8|ts)$", examples=["index.m3u8"],
                      description="index.m3u8 or one of the segments it lists")


class MediaFile(BaseModel):
    id: Id
    name: Literal["recording.mp4", "thumbnail.jpg"]


class SessionPatch(Parameters):
    """The headers a PATCH on a WHIP or WHEP session may carry besides its type."""

    refusal: ClassVar[tuple[int, str]] = (400, "bad-if-match")
    if_match: str | None = Field(default=None, alias="If-Match",
                                 pattern=rf"^[ \t]*(\*|{_ENTITY_TAG}([ \t]*,[ \t]*{_ENTITY_TAG})*)[ \t]*$",
                                 description="the session's ETag (412 when it names another); * asks for an ICE "
                                             "restart, which is refused with 422")


class NodeMark(Parameters):
    """Internal, node to node: the mark on a relay offer one node sends another (cluster.py). A client has no use
    for it; a mark whose proof does not check out is ignored and the offer is a client's."""

    refusal: ClassVar[tuple[int, str] | None] = None
    node: str | None = Field(default=None, alias=NODE_HEADER,
                             description="internal: the id of the node relaying this stream to its viewers")
    proof: str | None = Field(default=None, alias=PROOF_HEADER,
                              description="internal: an HMAC of that id under the secret the nodes share")


def cors_rules(settings: Settings) -> list[CorsRule]:
    """Which pages may use the media plane from another origin: publishers (WHIP) and players (WHEP, HLS, files)."""
    return [
        CorsRule(("/whip/",), parse_origins(settings.ingest_cors_origins), methods=WEBRTC_METHODS,
                 request_headers=WEBRTC_REQUEST_HEADERS, exposed_headers=WEBRTC_EXPOSED_HEADERS),
        CorsRule(("/whep/",), parse_origins(settings.playback_cors_origins), methods=WEBRTC_METHODS,
                 request_headers=WEBRTC_REQUEST_HEADERS, exposed_headers=WEBRTC_EXPOSED_HEADERS),
        CorsRule(("/hls/", "/media/"), parse_origins(settings.playback_cors_origins)),
    ]


def ice_server_links(settings: Settings) -> list[str]:
    """`Link` header values for the configured STUN/TURN servers (RFC 9725 section 4.6)."""
    links = []
    for url in (u.strip() for u in settings.media_ice_servers.split(",")):
        if not url:
            continue
        link = f'<{url}>; rel="ice-server"'
        if url.startswith(("turn:", "turns:")) and settings.media_ice_username:
            link += (f'; username="{settings.media_ice_username}"; credential="{settings.media_ice_credential}"'
                     '; credential-type="password"')
        links.append(link)
    return links


def _stream_id(request: web.Request) -> int:
    return path_id(request, "stream-not-found", "stream")


async def _offer(request: web.Request) -> str:
    if request.content_type != SDP_TYPE:
        raise Problem(415, "unsupported-media-type", f"expected {SDP_TYPE}, got {request.content_type or 'nothing'}")
    return await request.text()


async def _fragment(request: web.Request) -> str:
    if request.content_type != TRICKLE_TYPE:
        raise Problem(415, "unsupported-media-type",
                      f"expected {TRICKLE_TYPE}, got {request.content_type or 'nothing'}")
    return await request.text()


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _with_links(request: web.Request, headers: CIMultiDict[str]) -> CIMultiDict[str]:
    for link in ice_server_links(request.app[MEDIA].settings):
        headers.add("Link", link)
    return headers


def _sdp_answer(request: web.Request, answer: SessionAnswer, location: str) -> web.Response:
    headers = _with_links(request, CIMultiDict(Location=location, ETag=answer.etag))
    return web.Response(status=201, text=answer.sdp, content_type=SDP_TYPE, headers=headers)


@operation("WHIP: what the endpoint accepts (Accept-Post), and the ICE servers (Link) when the stream key is sent",
           status=204, tag="media", security=("stream_key", ANONYMOUS),
           reply_headers={**_ENDPOINT_OPTIONS, "Link": _LINK}, problems={404: ["stream-not-found"]})
async def whip_options(request: web.Request) -> web.Response:
    stream_id = _stream_id(request)
    headers = CIMultiDict({"Accept-Post": SDP_TYPE, "Allow": "OPTIONS, POST"})
    if await request.app[MEDIA].key_matches(stream_id, _bearer(request)):
        _with_links(request, headers)  # TURN credentials only for the stream's publisher
    return web.Response(status=204, headers=headers)


@operation("WHIP: publish to a stream (bearer = stream key), SDP offer in, SDP answer out (Location, ETag, Link)",
           status=201, body=_SDP, reply=_SDP, reply_headers=_SDP_ANSWER, security=("stream_key",), tag="media",
           problems={400: ["malformed-sdp"], 401: ["bad-stream-key"], 404: ["stream-not-found"],
                     409: ["stream-ended", "already-publishing"], 415: ["unsupported-media-type"]})
async def whip_publish(request: web.Request) -> web.Response:
    stream_id = _stream_id(request)
    bearer = _bearer(request)
    if not bearer:
        raise Problem(401, "bad-stream-key", "send the stream key as `Authorization: Bearer <key>`")
    answer = await request.app[MEDIA].publish(stream_id, bearer, await _offer(request))
    return _sdp_answer(request, answer, f"/whip/{stream_id}/{answer.session}")


@operation("WHIP and WHEP sessions: what they accept (Accept-Patch)", status=204, tag="media",
           reply_headers={"Accept-Patch": f"{TRICKLE_TYPE}: what PATCH takes", "Allow": "OPTIONS, PATCH, DELETE"},
           problems={404: ["stream-not-found"]})
async def session_options(request: web.Request) -> web.Response:
    _stream_id(request)
    return web.Response(status=204, headers={"Accept-Patch": TRICKLE_TYPE, "Allow": "OPTIONS, PATCH, DELETE"})


@operation("WHIP: trickle ICE candidates, the stream key as bearer (401 before 404); on any node (passed on to the "
           "session's node)", status=204, tag="media", body=Content.of(TRICKLE_TYPE), headers=SessionPatch,
           security=("stream_key",), problems={**_PATCHED, 401: ["bad-stream-key"], 502: _PASSED_ON})
async def whip_trickle(request: web.Request) -> web.Response:
    plane = request.app[MEDIA]
    stream_id = _stream_id(request)
    if (passed_on := await plane.holder_answer(request)) is not None:
        return passed_on
    room = await plane.publisher_room(stream_id, request.match_info["session"], _bearer(request))
    fragment = await _fragment(request)
    await plane.trickle(room, fragment, parse_headers(request, SessionPatch).if_match)
    return web.Response(status=204)


@operation("WHIP: stop publishing, the stream key as bearer (401 before 404); the stream ends; on any node",
           tag="media", security=("stream_key",),
           problems={**_SESSION_NOT_FOUND, 401: ["bad-stream-key"], 502: _PASSED_ON})
async def whip_delete(request: web.Request) -> web.Response:
    plane = request.app[MEDIA]
    stream_id = _stream_id(request)
    if (passed_on := await plane.holder_answer(request)) is not None:
        return passed_on
    room = await plane.publisher_room(stream_id, request.match_info["session"], _bearer(request))
    await plane.unpublish(room)
    return web.Response(status=200)


@operation("WHEP: what the endpoint accepts (Accept-Post) and the ICE servers (Link)", status=204, tag="media",
           reply_headers={**_ENDPOINT_OPTIONS, "Link": _LINK}, problems={404: ["stream-not-found"]})
async def whep_options(request: web.Request) -> web.Response:
    _stream_id(request)
    headers = CIMultiDict({"Accept-Post": SDP_TYPE, "Allow": "OPTIONS, POST"})
    return web.Response(status=204, headers=_with_links(request, headers))


@operation("WHEP: watch a stream, SDP offer in, SDP answer out (Location, ETag, Link); 503 with hls_url when full. "
           "On a node that does not have the publisher, served through a relay from the node that has (502 "
           "relay-failed with hls_url when that fails); another node's relay offer, marked with the internal "
           f"{NODE_HEADER} and {PROOF_HEADER} headers, is answered by the owner only (409, 508)",
           status=201, body=_SDP, reply=_SDP, reply_headers=_SDP_ANSWER, headers=NodeMark, tag="media",
           problems={400: ["malformed-sdp"], 404: ["stream-not-found", "stream-not-live"],
                     409: ["not-the-owner"], 415: ["unsupported-media-type"], 502: ["relay-failed", *_PASSED_ON],
                     503: ["over-capacity", "owner-unreachable"], 508: ["relay-loop"]})
async def whep_watch(request: web.Request) -> web.Response:
    plane = request.app[MEDIA]
    stream_id = _stream_id(request)
    answer = await plane.watch(stream_id, await _offer(request), from_node=plane.link.sender(request))
    return _sdp_answer(request, answer, f"/whep/{stream_id}/{answer.session}")


@operation("WHEP: trickle ICE candidates; on any node (passed on to the session's node)", status=204, tag="media",
           body=Content.of(TRICKLE_TYPE), headers=SessionPatch, problems={**_PATCHED, 502: _PASSED_ON})
async def whep_trickle(request: web.Request) -> web.Response:
    plane = request.app[MEDIA]
    stream_id = _stream_id(request)
    if (passed_on := await plane.holder_answer(request)) is not None:
        return passed_on
    viewer = plane.viewer(stream_id, request.match_info["session"])
    fragment = await _fragment(request)
    await plane.trickle_viewer(viewer, fragment, parse_headers(request, SessionPatch).if_match)
    return web.Response(status=204)


@operation("WHEP: stop watching; on any node (passed on to the session's node)", tag="media",
           problems={**_SESSION_NOT_FOUND, 502: _PASSED_ON})
async def whep_delete(request: web.Request) -> web.Response:
    plane = request.app[MEDIA]
    stream_id = _stream_id(request)
    if (passed_on := await plane.holder_answer(request)) is not None:
        return passed_on
    await plane.stop_watching(stream_id, request.match_info["session"])
    return web.Response(status=200)


_HLS_TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".ts": "video/mp2t"}
_MEDIA_FILES = {"recording.mp4": "video/mp4", "thumbnail.jpg": "image/jpeg"}


@operation("HLS for large audiences: index.m3u8 (short-lived cache; before the first segment of a stream that has "
           "not ended, it waits up to hls_playlist_wait_ms_max) and its segments (immutable); a live stream's from "
           "any node (passed on to the node that makes them)", tag="media",
           path=HlsFile, reply=Content.of(*_HLS_TYPES.values(), schema={"type": "string", "format": "binary"}),
           reply_headers={"Cache-Control": "how long a CDN may keep it"},
           problems={404: ["stream-not-found", "not-found", "hls-not-ready"], 502: _PASSED_ON,
                     503: _COPY_FAILED})
async def hls_file(request: web.Request) -> web.StreamResponse:
    plane = request.app[MEDIA]
    stream_id = _stream_id(request)
    name = request.match_info["name"]
    suffix = name[name.rfind("."):] if "." in name else ""
    if suffix not in _HLS_TYPES or "/" in name or name.startswith("."):
        raise Problem(404, "not-found", f"there is no HLS file {name!r}")
    path = plane.files(stream_id).hls / name
    # A node that made this stream's files before its publisher moved still has an old playlist: ask the owner.
    if suffix == ".m3u8" or not path.is_file():
        passed_on = await plane.owner_answer(request, stream_id)
        if passed_on is not None:
            return passed_on
    if name == "index.m3u8" and not path.is_file():
        await plane.wait_for_playlist(stream_id)
    if not path.is_file():
        path = await plane.ended_copy(request, stream_id, f"hls/{name}") or path
    if not path.is_file():
        raise Problem(404, "hls-not-ready", f"stream {stream_id} has no HLS file {name} (yet)")
    live = stream_id in plane.outputs
    if suffix == ".m3u8":
        cache = "public, max-age=1" if live else "public, max-age=3600"
    else:
        cache = "public, max-age=86400, immutable"
    return web.FileResponse(path, headers={"Cache-Control": cache, "Content-Type": _HLS_TYPES[suffix]})


@operation("A stream's recording (MP4, for replay) or its latest thumbnail (JPEG); an ended stream's from any node "
           "(copied once from the node that made them)", tag="media", path=MediaFile,
           reply=Content.of(*_MEDIA_FILES.values(), schema={"type": "string", "format": "binary"}),
           problems={404: ["stream-not-found", "not-found"], 409: ["still-recording"], 503: _COPY_FAILED})
async def media_file(request: web.Request) -> web.StreamResponse:
    plane = request.app[MEDIA]
    stream_id = _stream_id(request)
    name = request.match_info["name"]
    if name not in _MEDIA_FILES:
        raise Problem(404, "not-found", f"there is no media file {name!r}")
    path = plane.files(stream_id).directory / name
    if not path.is_file():
        path = await plane.ended_copy(request, stream_id, name) or path
    if not path.is_file():
        raise Problem(404, "not-found", f"stream {stream_id} has no {name}")
    if name == "recording.mp4" and stream_id in plane.outputs:
        raise Problem(409, "still-recording", "the recording is available once the stream ends")
    cache = "public, max-age=5" if name == "thumbnail.jpg" else "public, max-age=86400"
    return web.FileResponse(path, headers={"Cache-Control": cache, "Content-Type": _MEDIA_FILES[name]})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/hls/{id}/{name}", hls_file)
    app.router.add_get("/media/{id}/{name}", media_file)
    app.router.add_route("OPTIONS", "/whip/{id}", whip_options)
    app.router.add_post("/whip/{id}", whip_publish)
    app.router.add_route("OPTIONS", "/whip/{id}/{session}", session_options)
    app.router.add_patch("/whip/{id}/{session}", whip_trickle)
    app.router.add_delete("/whip/{id}/{session}", whip_delete)
    app.router.add_route("OPTIONS", "/whep/{id}", whep_options)
    app.router.add_post("/whep/{id}", whep_watch)
    app.router.add_route("OPTIONS", "/whep/{id}/{session}", session_options)
    app.router.add_patch("/whep/{id}/{session}", whep_trickle)
    app.router.add_delete("/whep/{id}/{session}", whep_delete)
