"""HTTP routes of the media plane: WHIP ingest and WHEP playback (RFC 9725 and the WHEP draft), HLS files.

A session request (PATCH, DELETE) that a load balancer sends to a node other than the session's is passed on to that
node, and so is an HLS request to a node that does not make the stream's files (see `cluster.py`).

WHIP and WHEP answer `OPTIONS` on their endpoints and sessions (what they accept, and the ICE servers to use) and
are open to pages on other origins (`ingest_cors_origins`, `playback_cors_origins`; see `cors_rules`), since
publishers and players are embedded in other sites.
"""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from livecore.config import Settings
from livecore.cors import CorsRule, parse_origins
from livecore.http import Problem, operation, path_id
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
           status=204, tag="media")
async def whip_options(request: web.Request) -> web.Response:
    stream_id = _stream_id(request)
    headers = CIMultiDict({"Accept-Post": SDP_TYPE, "Allow": "OPTIONS, POST"})
    if await request.app[MEDIA].key_matches(stream_id, _bearer(request)):
        _with_links(request, headers)  # TURN credentials only for the stream's publisher
    return web.Response(status=204, headers=headers)


@operation("WHIP: publish to a stream (bearer = stream key), SDP offer in, SDP answer out (Location, ETag, Link)",
           status=201, auth=True, tag="media",
           responses={400: "malformed SDP", 401: "wrong stream key", 404: "no such stream", 409: "another publisher "
                      "is live, or the stream has ended", 415: "not application/sdp"})
async def whip_publish(request: web.Request) -> web.Response:
    stream_id = _stream_id(request)
    bearer = _bearer(request)
    if not bearer:
        raise Problem(401, "bad-stream-key", "send the stream key as `Authorization: Bearer <key>`")
    answer = await request.app[MEDIA].publish(stream_id, bearer, await _offer(request))
    return _sdp_answer(request, answer, f"/whip/{stream_id}/{answer.session}")


@operation("WHIP and WHEP sessions: what they accept (Accept-Patch)", status=204, tag="media")
async def session_options(request: web.Request) -> web.Response:
    _stream_id(request)
    return web.Response(status=204, headers={"Accept-Patch": TRICKLE_TYPE, "Allow": "OPTIONS, PATCH, DELETE"})


@operation("WHIP: trickle ICE candidates (application/trickle-ice-sdpfrag), the stream key as bearer; on any node",
           status=204, auth=True, tag="media",
           responses={401: "wrong stream key", 404: "no such session", 412: "If-Match names another entity tag",
                      415: "not application/trickle-ice-sdpfrag", 422: "an ICE restart, which is not supported",
                      502: "the node holding the session did not answer"})
async def whip_trickle(request: web.Request) -> web.Response:
    plane = request.app[MEDIA]
    stream_id = _stream_id(request)
    if (passed_on := await plane.holder_answer(request)) is not None:
        return passed_on
    room = await plane.publisher_room(stream_id, request.match_info["session"], _bearer(request))
    await plane.trickle(room, await _fragment(request), request.headers.get("If-Match"))
    return web.Response(status=204)


@operation("WHIP: stop publishing, the stream key as bearer; the stream ends; on any node", auth=True, tag="media",
           responses={401: "wrong stream key", 404: "no such session",
                      502: "the node holding the session did not answer"})
async def whip_delete(request: web.Request) -> web.Response:
    plane = request.app[MEDIA]
    stream_id = _stream_id(request)
    if (passed_on := await plane.holder_answer(request)) is not None:
        return passed_on
    room = await plane.publisher_room(stream_id, request.match_info["session"], _bearer(request))
    await plane.unpublish(room)
    return web.Response(status=200)


@operation("WHEP: what the endpoint accepts (Accept-Post) and the ICE servers (Link)", status=204, tag="media")
async def whep_options(request: web.Request) -> web.Response:
    _stream_id(request)
    headers = CIMultiDict({"Accept-Post": SDP_TYPE, "Allow": "OPTIONS, POST"})
    return web.Response(status=204, headers=_with_links(request, headers))


@operation("WHEP: watch a stream, SDP offer in, SDP answer out (Location, ETag, Link); 503 with hls_url when full. "
           "On a node that does not have the publisher, served through a relay from the node that has; another "
           "node's relay offer (X-Livecore-Node and X-Livecore-Node-Proof) is answered by that node only",
           status=201, tag="media",
           responses={400: "malformed SDP", 404: "no publisher", 409: "a relay offer to a node that is not the owner",
                      415: "not application/sdp", 502: "the owner node did not answer the relay (with hls_url)",
                      503: "over capacity, or the owner node is gone (with hls_url)",
                      508: "a relay offer from this node itself"})
async def whep_watch(request: web.Request) -> web.Response:
    plane = request.app[MEDIA]
    stream_id = _stream_id(request)
    answer = await plane.watch(stream_id, await _offer(request), from_node=plane.link.sender(request))
    return _sdp_answer(request, answer, f"/whep/{stream_id}/{answer.session}")


@operation("WHEP: trickle ICE candidates (application/trickle-ice-sdpfrag); on any node", status=204, tag="media",
           responses={404: "no such session", 412: "If-Match names another entity tag",
                      415: "not application/trickle-ice-sdpfrag", 422: "an ICE restart, which is not supported",
                      502: "the node holding the session did not answer"})
async def whep_trickle(request: web.Request) -> web.Response:
    plane = request.app[MEDIA]
    stream_id = _stream_id(request)
    if (passed_on := await plane.holder_answer(request)) is not None:
        return passed_on
    viewer = plane.viewer(stream_id, request.match_info["session"])
    await plane.trickle_viewer(viewer, await _fragment(request), request.headers.get("If-Match"))
    return web.Response(status=204)


@operation("WHEP: stop watching; on any node", tag="media",
           responses={404: "no such session", 502: "the node holding the session did not answer"})
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
           responses={404: "no such file (yet)", 502: "the node making the files did not answer"})
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
        raise Problem(404, "hls-not-ready", f"stream {stream_id} has no HLS file {name} (yet)")
    live = stream_id in plane.outputs
    if suffix == ".m3u8":
        cache = "public, max-age=1" if live else "public, max-age=3600"
    else:
        cache = "public, max-age=86400, immutable"
    return web.FileResponse(path, headers={"Cache-Control": cache, "Content-Type": _HLS_TYPES[suffix]})


@operation("A stream's recording (MP4, for replay) or its latest thumbnail (JPEG)", tag="media")
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
