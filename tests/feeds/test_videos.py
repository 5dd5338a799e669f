"""Videos: uploads checked and transcoded once, thumbnails, range requests, recordings posted when streams end."""

from __future__ import annotations

import io

from clips import codecs_of, make_mp4
from feedclient import auth, feeds_of, get_json, post_video, upload
from livenode import RunningNode
from PIL import Image

from livecore.streams import end_stream
from livecore.streams.streams import set_media_urls


async def test_an_h264_aac_upload_is_kept_as_it_is_and_served_with_ranges(node: RunningNode) -> None:
    creator = await node.signup()
    data = make_mp4(seconds=1.5)
    video = await post_video(node, creator["token"], data, caption="hello", hashtags="#Cats, dogs #cats")
    assert video["state"] == "ready", video
    assert video["hashtags"] == ["cats", "dogs"] and video["caption"] == "hello"
    assert 1400 <= video["duration_ms"] <= 1700 and (video["width"], video["height"]) == (160, 120)
    async with node.http.get(node.url + video["video_url"]) as response:
        assert response.status == 200 and response.content_type == "video/mp4"
        assert await response.read() == data  # already playable: copied, not re-encoded
    async with node.http.get(node.url + video["video_url"], headers={"Range": "bytes=100-199"}) as response:
        assert response.status == 206 and response.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
        assert await response.read() == data[100:200]
    async with node.http.get(node.url + video["thumbnail_url"]) as response:
        assert response.status == 200 and response.content_type == "image/jpeg"
        thumbnail = Image.open(io.BytesIO(await response.read()))
        assert thumbnail.format == "JPEG" and thumbnail.size == (160, 120)
        red, green, _ = thumbnail.convert("RGB").getpixel((5, 60))
        assert red > 150 and green < 100  # the clip's colour, so it is a frame of this video


async def test_other_codecs_are_transcoded_once_to_h264_and_aac(node: RunningNode) -> None:
    creator = await node.signup()
    data = make_mp4(video_codec="mpeg4", audio_codec="mp2", width=320, height=240)
    assert codecs_of(data) != ("h264", "aac")
    video = await post_video(node, creator["token"], data)
    assert video["state"] == "ready", video
    async with node.http.get(node.url + video["video_url"]) as response:
        assert codecs_of(await response.read()) == ("h264", "aac")


async def test_oversize_frames_are_scaled_down(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = await node_factory(video_edge_px_max=160)
    creator = await node.signup()
    video = await post_video(node, creator["token"], make_mp4(width=320, height=240))
    assert (video["width"], video["height"]) == (160, 120)


async def test_refused_uploads_say_why(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = await node_factory(video_duration_ms_max=1000, video_bytes_max=200_000)
    creator = await node.signup()
    long = await post_video(node, creator["token"], make_mp4(seconds=2))
    assert long["state"] == "failed" and "video_duration_ms_max" in long["failure"]
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, "PNG")
    not_mp4 = await post_video(node, creator["token"], png.getvalue())
    assert not_mp4["state"] == "failed" and "MP4" in not_mp4["failure"]
    webm = await post_video(node, creator["token"], make_mp4(video_codec="libvpx", audio_codec=None,
                                                             container_format="webm"))
    assert webm["state"] == "failed" and "MP4" in webm["failure"]
    too_big = await upload(node, creator["token"], b"\0" * 200_001)
    assert too_big.status == 413 and (await too_big.json())["type"] == "livecore:video-too-large"
    too_many = await upload(node, creator["token"], hashtags=" ".join(f"t{i}" for i in range(21)))
    assert too_many.status == 400 and (await too_many.json())["field"] == "hashtags"
    async with node.http.post(f"{node.url}/api/videos", json={"caption": "x"},
                              headers=auth(creator["token"])) as response:
        assert response.status == 415
    viewer = await node.signup(roles=["viewer"])
    assert (await upload(node, viewer["token"])).status == 403


async def test_a_users_videos_page_by_cursor(node: RunningNode) -> None:
    creator = await node.signup()
    posted = [(await post_video(node, creator["token"], caption=f"clip {i}"))["id"] for i in range(3)]
    status, first = await get_json(node, f"/api/users/{creator['id']}/videos?limit=2")
    assert status == 200 and [v["id"] for v in first["items"]] == posted[::-1][:2]
    status, second = await get_json(node, f"/api/users/{creator['id']}/videos?limit=2&cursor={first['next_cursor']}")
    assert [v["id"] for v in second["items"]] == posted[:1] and second["next_cursor"] is None
    status, bad = await get_json(node, f"/api/users/{creator['id']}/videos?cursor=bm90LWEtY3Vyc29y")
    assert status == 400 and bad["type"] == "livecore:bad-cursor"
    status, oversize = await get_json(node, f"/api/users/{creator['id']}/videos?limit=51")
    assert status == 400 and oversize["field"] == "limit"


async def test_an_ended_streams_recording_becomes_a_video_unless_opted_out(node: RunningNode) -> None:
    creator = await node.signup()
    kept = await node.create_stream(creator["token"], title="my first live")
    skipped = await node.create_stream(creator["token"], title="not for replay")
    async with node.http.put(f"{node.url}/api/streams/{skipped['id']}/recording", json={"post_recording": False},
                             headers=auth(creator["token"])) as response:
        assert response.status == 200
    other = await node.signup()
    async with node.http.put(f"{node.url}/api/streams/{kept['id']}/recording", json={"post_recording": False},
                             headers=auth(other["token"])) as response:
        assert response.status == 403
    for stream in (kept, skipped):
        # What the media plane leaves when a recorded stream ends: the file, then its URL on the stream.
        folder = node.node.settings.data_dir / "media" / str(stream["id"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "recording.mp4").write_bytes(make_mp4(seconds=1))
        await end_stream(node.node, stream["id"], "the test ended it")
        await set_media_urls(node.node.pool, stream["id"], recording_url=f"/media/{stream['id']}/recording.mp4")
    feeds = feeds_of(node)
    made = await feeds.post_recordings()
    assert len(made) == 1 and await feeds.post_recordings() == []  # once
    await feeds.processor.drain()
    _, video = await get_json(node, f"/api/videos/{made[0]}")
    assert video["state"] == "ready" and video["from_stream_id"] == kept["id"] and video["caption"] == "my first live"
