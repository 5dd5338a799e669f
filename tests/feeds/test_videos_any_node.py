"""Any node serves any video: a node that did not process a video fetches its files once from the node that did,
keeps them on its disk (bounded) and answers from there like the holder; a holder that is gone is a clear 503."""

from __future__ import annotations

import asyncio

from clips import make_mp4
from feedclient import feeds_of, post_video
from livenode import RunningNode
from multidict import CIMultiDict


async def _get(node: RunningNode, path: str, headers: dict[str, str] | None = None
               ) -> tuple[int, CIMultiDict[str], bytes]:
    async with node.http.get(node.url + path, headers=headers or {}) as response:
        return response.status, response.headers.copy(), await response.read()


def _fetches(node: RunningNode) -> float:
    return node.node.registry.get_sample_value("livecore_feed_video_fetches_total") or 0.0


async def test_a_video_processed_on_one_node_plays_from_another(node_factory) -> None:  # type: ignore[no-untyped-def]
    holder = await node_factory()
    other = await node_factory()
    creator = await holder.signup()
    data = make_mp4(seconds=1.5)
    video = await post_video(holder, creator["token"], data)
    assert video["state"] == "ready", video

    status, headers, body = await _get(other, video["video_url"])
    assert status == 200 and body == data and _fetches(other) == 1
    own = await _get(holder, video["video_url"])
    for name in ("Content-Type", "Cache-Control", "Accept-Ranges", "Last-Modified", "ETag"):
        assert headers[name] == own[1][name], name
    # A player resuming a range it began on the holder, now behind the balancer on this node, gets the range.
    status, _, body = await _get(other, video["video_url"], {"Range": "bytes=10-19", "If-Range": own[1]["ETag"]})
    assert status == 206 and body == data[10:20]
    status, _, _ = await _get(other, video["video_url"], {"If-None-Match": own[1]["ETag"]})
    assert status == 304

    status, headers, body = await _get(other, video["video_url"], {"Range": "bytes=100-199"})
    assert status == 206 and body == data[100:200]
    assert headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    status, _, body = await _get(other, video["video_url"], {"Range": f"bytes={len(data) - 50}-"})
    assert status == 206 and body == data[-50:]
    assert _fetches(other) == 1  # both ranges from the copy

    status, headers, thumbnail = await _get(other, video["thumbnail_url"])
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert thumbnail == (await _get(holder, video["thumbnail_url"]))[2]
    assert _fetches(other) == 2
    assert (await _get(other, video["thumbnail_url"]))[2] == thumbnail
    assert _fetches(other) == 2
    assert _fetches(holder) == 0  # the holder served its own files


async def test_requests_at_once_for_one_file_cost_the_holder_one_fetch(node_factory) -> None:  # type: ignore[no-untyped-def]
    holder = await node_factory()
    other = await node_factory()
    creator = await holder.signup()
    data = make_mp4(seconds=1)
    video = await post_video(holder, creator["token"], data)
    crowd = await asyncio.gather(*(_get(other, video["video_url"]) for _ in range(8)))
    assert [(status, body == data) for status, _, body in crowd] == [(200, True)] * 8
    assert _fetches(other) == 1
    cache = feeds_of(other).holders.copies
    assert cache.fetches == 1 and cache.hits == 7 and cache.stored_bytes == len(data)


async def test_a_gone_holder_is_a_clear_503_and_copies_still_play(node_factory) -> None:  # type: ignore[no-untyped-def]
    holder = await node_factory()
    other = await node_factory()
    creator = await holder.signup()
    kept = await post_video(holder, creator["token"], make_mp4(seconds=1))
    never_fetched = await post_video(holder, creator["token"], make_mp4(seconds=1, width=128, height=96))
    status, _, data = await _get(other, kept["video_url"])
    assert status == 200
    feeds_of(holder).files.thumbnail(never_fetched["id"]).unlink()  # lost on the holder: not found, not an error
    async with other.http.get(other.url + never_fetched["thumbnail_url"]) as response:
        problem = await response.json(content_type=None)
        assert response.status == 404 and problem["type"] == "livecore:video-not-found"
        assert holder.node.settings.node_id in problem["detail"]

    await holder.stop()
    status, _, body = await _get(other, kept["video_url"])
    assert status == 200 and body == data  # from this node's copy
    status, _, body = await _get(other, kept["video_url"], {"Range": "bytes=0-9"})
    assert status == 206 and body == data[:10]
    async with other.http.get(other.url + never_fetched["video_url"]) as response:
        problem = await response.json(content_type=None)
        assert response.status == 503 and response.content_type == "application/problem+json"
        assert problem["type"].endswith("video-node-gone") and "not running" in problem["detail"]
        assert response.headers["Retry-After"] == "30"
    assert _fetches(other) == 2  # the kept video and the lost thumbnail asked of the holder; nothing once it was gone
