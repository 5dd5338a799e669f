"""The sound library: uploads checked with PyAV and stored as AAC, listed, searched, streamed and credited."""

from __future__ import annotations

import io

import av
from livenode import RunningNode
from soundclient import get_json, make_audio, new_sound


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
