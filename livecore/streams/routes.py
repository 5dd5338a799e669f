"""HTTP routes for streams: create, end, read, the live directory."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from livecore.accounts import is_adult
from livecore.accounts.session import require_account
from livecore.http import NO_NUL, Id, Problem, json_response, operation, parse_body, path_id
from livecore.node import NODE
from livecore.streams import lifecycle, streams


class NewStream(BaseModel):
    title: str = Field(min_length=1, max_length=120, pattern=NO_NUL)


class Creator(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Id
    username: str
    display_name: str


class StreamView(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Id
    title: str
    state: Literal["created", "live", "ended"]
    creator: Creator
    viewers: int = Field(ge=0, description="watching now, across all nodes")
    created_at: dt.datetime
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    watch_url: str
    recording_url: str | None = Field(description="the replay, once the stream has ended and was recorded")
    thumbnail_url: str | None


class NewStreamView(StreamView):
    stream_key: str = Field(description="WHIP's bearer token for this stream; keep it secret")
    whip_url: str


class StreamIngest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Id
    state: Literal["created", "live", "ended"]
    stream_key: str = Field(description="WHIP's bearer token for this stream; keep it secret")
    whip_url: str


class LiveDirectory(BaseModel):
    model_config = ConfigDict(extra="forbid")
    streams: list[StreamView] = Field(description="busiest first")


_NOT_FOUND = {404: ["stream-not-found"]}


@operation("Go live: create a stream (creators, 18+)", body=NewStream, status=201, auth=True, tag="streams",
           reply=NewStreamView, problems={403: ["not-a-creator", "under-18"]})
async def create_stream(request: web.Request) -> web.Response:
    node = request.app[NODE]
    account = await require_account(request)
    if "creator" not in account.roles:
        raise Problem(403, "not-a-creator", "only creator accounts can go live")
    if not is_adult(account, node.today()):
        raise Problem(403, "under-18", "you must be 18 or older to go live")
    body = await parse_body(request, NewStream)
    publish_by_ms = node.clock.now_ms() + node.settings.stream_unpublished_ms_max
    stream = await streams.create_stream(node.pool, account.id, body.title, publish_by_ms,
                                         node.settings.node_id)
    return json_response(
        {
            **stream.public(),
            "stream_key": stream.stream_key,
            "whip_url": f"{node.settings.public_url}/whip/{stream.id}",
        },
        status=201,
    )


@operation("End your stream", auth=True, tag="streams", reply=StreamView,
           problems={**_NOT_FOUND, 403: ["not-your-stream"]})
async def end_stream(request: web.Request) -> web.Response:
    node = request.app[NODE]
    account = await require_account(request)
    stream = await _stream_or_404(request)
    if stream.creator_id != account.id:
        raise Problem(403, "not-your-stream", "only the stream's creator can end it")
    await lifecycle.end_stream(node, stream.id, "the creator ended the stream")
    return json_response((await _stream_or_404(request)).public())


@operation("Your stream's WHIP URL and stream key (its creator only): go live again from another tool or after a "
           "reload", auth=True, tag="streams", reply=StreamIngest, problems={**_NOT_FOUND, 403: ["not-your-stream"]})
async def stream_ingest(request: web.Request) -> web.Response:
    node = request.app[NODE]
    account = await require_account(request)
    stream = await _stream_or_404(request)
    if stream.creator_id != account.id:
        raise Problem(403, "not-your-stream", "only the stream's creator can read its stream key")
    return json_response({"id": stream.id, "state": stream.state, "stream_key": stream.stream_key,
                          "whip_url": f"{node.settings.public_url}/whip/{stream.id}"})


@operation("A stream's public description", tag="streams", reply=StreamView, problems=_NOT_FOUND)
async def get_stream(request: web.Request) -> web.Response:
    node = request.app[NODE]
    stream = await _stream_or_404(request)
    counts = await node.rooms.viewer_counts([stream.id]) if node.rooms else {}
    return json_response(stream.public(viewers=counts.get(stream.id, 0)))


@operation("What is live now, with viewer counts", tag="streams", reply=LiveDirectory)
async def live_directory(request: web.Request) -> web.Response:
    node = request.app[NODE]
    live = await streams.live_streams(node.pool)
    counts = await node.rooms.viewer_counts([s.id for s in live]) if node.rooms else {}
    ranked = sorted(live, key=lambda s: counts.get(s.id, 0), reverse=True)
    return json_response({"streams": [s.public(viewers=counts.get(s.id, 0)) for s in ranked]})


async def _stream_or_404(request: web.Request) -> streams.Stream:
    stream = await streams.get_stream(request.app[NODE].pool, path_id(request, "stream-not-found", "stream"))
    if stream is None:
        raise Problem(404, "stream-not-found", f"there is no stream {request.match_info['id']}")
    return stream


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/streams", create_stream)
    app.router.add_post("/api/streams/{id}/end", end_stream)
    app.router.add_get("/api/streams/{id}", get_stream)
    app.router.add_get("/api/streams/{id}/ingest", stream_ingest)
    app.router.add_get("/api/live", live_directory)
