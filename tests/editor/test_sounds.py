"""The sound library: uploads checked with PyAV and stored as AAC, listed, searched, streamed and credited."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import av
from livenode import RunningNode
from PIL import Image
from soundclient import auth, get_json, make_audio, new_sound, post_video, ready_video, upload_sound

from editor import EDITOR, SoundNotFound, sound_audio_path
from feeds import FEEDS


async def test_an_upload_is_stored_as_aac_and_listed_with_its_credit(node: RunningNode) -> None:
    creator = await node.signup()
    sound = await new_sound(node, creator["token"], data=make_audio(seconds=2.5), title="Rain on Tin",
                            artist="Mara Okafor", licence="CC-BY-4.0")
    assert (sound["title"], sound["artist"], sound["licence"]) == ("Rain on Tin", "Mara Okafor", "CC-BY-4.0")
    assert sound["uploader"]["id"] == creator["id"] and not sound["platform"] and sound["uses"] == 0
    assert 2400 <= sound["duration_ms"] <= 2600
    async with node.http.get(node.url + sound["audio_url"]) as response:
        assert response.status == 200 and response.content_type == "audio/mp4"
        audio = await response.read()
    with av.open(io.BytesIO(audio)) as container:
        assert not container.streams.video and container.streams.audio[0].codec_context.name == "aac"
    async with node.http.get(node.url + sound["audio_url"], headers={"Range": "bytes=0-99"}) as response:
        assert response.status == 206 and await response.read() == audio[:100]
    status, page = await get_json(node, f"/api/sounds/{sound['id']}")
    assert status == 200 and page["artist"] == "Mara Okafor" and page["videos"] == []
    status, found = await get_json(node, "/api/sounds?q=okafor&sort=new")
    assert status == 200 and [s["id"] for s in found["items"]] == [sound["id"]]
    status, found = await get_json(node, "/api/sounds?q=tin")
    assert sound["id"] in [s["id"] for s in found["items"]]


async def test_wav_and_ogg_are_taken_and_cover_art_is_no_video(node: RunningNode) -> None:
    creator = await node.signup()
    wav = await new_sound(node, creator["token"], data=make_audio(codec="pcm_s16le", container_format="wav"),
                          filename="tone.wav")
    ogg = await new_sound(node, creator["token"], data=make_audio(codec="libopus", container_format="ogg"),
                          filename="tone.ogg")
    mp3 = await new_sound(node, creator["token"], data=make_audio(cover_art=True), filename="album.mp3")
    assert all(1900 <= s["duration_ms"] <= 2150 for s in (wav, ogg, mp3)), (wav, ogg, mp3)


async def test_refused_uploads_say_what_is_wrong_and_leave_nothing_behind(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = await node_factory(sound_duration_ms_max=3000, sound_duration_ms_min=1000, sound_bytes_max=100_000)
    token = (await node.signup())["token"]

    async def refused(status: int, slug: str, **upload: Any) -> dict[str, Any]:
        got, problem = await upload_sound(node, token, **upload)
        assert (got, problem["type"]) == (status, f"livecore:{slug}"), problem
        return problem

    with_video = make_audio(with_video=True, codec="aac", container_format="mp4")
    assert "video track" in (await refused(422, "unsupported-sound", data=with_video))["detail"]
    assert "sound_duration_ms_max" in (await refused(422, "unsupported-sound", data=make_audio(seconds=4)))["detail"]
    assert "sound_duration_ms_min" in (await refused(422, "unsupported-sound",
                                                     data=make_audio(seconds=0.5)))["detail"]
    png = io.BytesIO()
    Image.new("RGB", (8, 8)).save(png, "PNG")
    assert (await refused(422, "unsupported-sound", data=png.getvalue()))["field"] == "file"
    await refused(422, "unsupported-sound", data=b"this is not audio at all" * 50)
    assert (await refused(413, "sound-too-large", data=b"\0" * 100_001))["bytes_max"] == 100_000
    await refused(400, "file-required", omit=("file",))
    assert (await refused(400, "invalid-field", omit=("artist",)))["field"] == "artist"
    assert (await refused(400, "invalid-field", title=""))["field"] == "title"
    async with node.http.post(f"{node.url}/api/sounds", json={"title": "x"}, headers=auth(token)) as response:
        assert response.status == 415
    viewer = await node.signup(roles=["viewer"])
    status, problem = await upload_sound(node, viewer["token"])
    assert status == 403 and problem["type"] == "livecore:not-a-creator"
    status, found = await get_json(node, "/api/sounds?limit=50")
    assert status == 200 and not [s for s in found["items"] if s["uploader"] and s["uploader"]["id"] == viewer["id"]]
    files = node.app[EDITOR].sounds.files
    assert list(files.root.rglob("*.tmp")) == [] and list((files.root / "uploads").iterdir()) == []
    kept = {p.name for p in files.root.glob("*.m4a")}
    pool = node.node.pool
    recorded = {r["audio_file"] for r in await pool.fetch("SELECT audio_file FROM sounds")}
    assert kept <= recorded  # no audio file without its record


async def test_bad_queries_and_unknown_sounds(node: RunningNode) -> None:
    status, problem = await get_json(node, "/api/sounds/999999999")
    assert status == 404 and problem["type"] == "livecore:sound-not-found"
    status, problem = await get_json(node, "/api/sounds/nope/audio")
    assert status == 404 and problem["type"] == "livecore:sound-not-found"
    status, problem = await get_json(node, "/api/sounds?sort=loudest")
    assert status == 400 and problem["field"] == "sort"
    status, problem = await get_json(node, "/api/sounds?limit=51")
    assert status == 400 and "sound_page_videos_max" in problem["detail"]


async def test_videos_name_only_sounds_and_challenges_that_exist(node: RunningNode) -> None:
    creator = await node.signup()
    status, problem = await post_video(node, creator["token"], sound_id=987654321)
    assert (status, problem["type"], problem["field"]) == (404, "livecore:sound-not-found", "sound_id"), problem
    status, problem = await post_video(node, creator["token"], challenge_id=987654321)
    assert (status, problem["type"], problem["field"]) == (404, "livecore:challenge-not-found", "challenge_id")
    assert not list(node.app[FEEDS].files.root.glob("uploads/*"))  # the refused uploads are not kept
    sound = await new_sound(node, creator["token"])
    video_id = await ready_video(node, creator["token"], sound_id=sound["id"])
    status, page = await get_json(node, f"/api/sounds/{sound['id']}")
    assert [v["id"] for v in page["videos"]] == [video_id] and page["uses"] == 1
    assert page["videos"][0]["sound_id"] == sound["id"]
    mature = await ready_video(node, creator["token"], sound_id=sound["id"], mature=True)
    minor = await node.signup(birth_date="2014-01-01", roles=["viewer"])
    for token in (None, minor["token"]):  # mature videos are listed to adults only
        _, page = await get_json(node, f"/api/sounds/{sound['id']}", token)
        assert [v["id"] for v in page["videos"]] == [video_id] and page["uses"] == 2
    _, page = await get_json(node, f"/api/sounds/{sound['id']}", creator["token"])
    assert [v["id"] for v in page["videos"]] == [mature, video_id]


async def test_uses_count_each_ready_video_once_however_many_nodes_say_so_at_once(node_factory) -> None:  # type: ignore[no-untyped-def]
    first, second = await node_factory(), await node_factory()
    creator = await first.signup()
    sound = await new_sound(first, creator["token"])
    other = await new_sound(first, creator["token"], title="Another")
    videos = [await ready_video(first, creator["token"], sound_id=sound["id"]) for _ in range(6)]
    videos += [await ready_video(first, creator["token"], sound_id=other["id"]) for _ in range(2)]
    # Each video told ready again by both nodes at once, and both nodes' sweeps running beside them.
    pool = first.node.pool
    await pool.execute("DELETE FROM sound_uses WHERE video_id = ANY($1)", videos)
    await pool.execute("UPDATE sounds SET uses = 0 WHERE id = ANY($1)", [sound["id"], other["id"]])
    editors = [first.app[EDITOR], second.app[EDITOR]]
    await asyncio.gather(*(e.video_ready(v) for v in videos for e in editors),
                         *(e.video_ready(v) for v in reversed(videos) for e in editors),
                         *(e.count_missed_uses() for e in editors))
    for node, expected in ((first, 6), (second, 6)):
        _, page = await get_json(node, f"/api/sounds/{sound['id']}")
        assert page["uses"] == expected and len(page["videos"]) == expected
    _, page = await get_json(second, f"/api/sounds/{other['id']}")
    assert page["uses"] == 2
    _, ranked = await get_json(second, "/api/sounds?sort=uses&limit=50")
    order = [s["id"] for s in ranked["items"]]
    assert order.index(sound["id"]) < order.index(other["id"])


async def test_a_use_missed_while_the_database_was_away_is_counted_by_the_sweep(node: RunningNode) -> None:
    creator = await node.signup()
    sound = await new_sound(node, creator["token"])
    video_id = await ready_video(node, creator["token"], sound_id=sound["id"])
    pool = node.node.pool
    # As if the node had stopped between marking the video ready and counting it.
    await pool.execute("DELETE FROM sound_uses WHERE video_id = $1", video_id)
    await pool.execute("UPDATE sounds SET uses = uses - 1 WHERE id = $1", sound["id"])
    assert (await get_json(node, f"/api/sounds/{sound['id']}"))[1]["uses"] == 0
    assert await node.app[EDITOR].count_missed_uses() >= 1
    assert (await get_json(node, f"/api/sounds/{sound['id']}"))[1]["uses"] == 1
    assert await node.app[EDITOR].count_missed_uses() == 0


async def test_a_sound_added_on_one_node_plays_from_any_other_even_after_that_node_is_gone(node_factory) -> None:  # type: ignore[no-untyped-def]
    holder, other = await node_factory(), await node_factory(sound_cache_bytes_max=100_000)
    creator = await holder.signup()
    sound = await new_sound(holder, creator["token"])
    async with holder.http.get(holder.url + sound["audio_url"]) as response:
        original = await response.read()
    assert holder.node.registry.get_sample_value("livecore_editor_sound_reads_total") == 0  # its own upload
    fetches = await asyncio.gather(*(other.http.get(other.url + sound["audio_url"]) for _ in range(3)))
    for response in fetches:
        assert response.status == 200 and await response.read() == original
        response.release()
    reads = other.node.registry.get_sample_value
    assert reads("livecore_editor_sound_reads_total") == 1  # read from the database once, however many asked
    path = await sound_audio_path(other.app[EDITOR].sounds, sound["id"])
    assert path.read_bytes() == original and reads("livecore_editor_sound_reads_total") == 1
    await holder.stop()
    late = await node_factory()
    async with late.http.get(late.url + sound["audio_url"], headers={"Range": "bytes=10-19"}) as response:
        assert response.status == 206 and await response.read() == original[10:20]
    # The cache keeps at most sound_cache_bytes_max: a second sound pushes the first out, and it is read again.
    more = [await new_sound(late, creator["token"], data=make_audio(seconds=3), title=f"more {i}") for i in range(3)]
    for extra in more:
        async with other.http.get(other.url + extra["audio_url"]) as response:
            assert response.status == 200
    cache = other.app[EDITOR].sounds.cache
    assert cache.stored_bytes <= 100_000
    assert len(list(cache.root.glob("*.m4a"))) < 4
    try:
        await sound_audio_path(late.app[EDITOR].sounds, 987654321)
    except SoundNotFound as missing:
        assert missing.status == 404
    else:
        raise AssertionError("an unknown sound has no audio path")
