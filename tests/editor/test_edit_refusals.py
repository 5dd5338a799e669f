"""What the editor refuses, and how: malformed edit decision lists and unusable references answer problem+json
naming the field; unsupported clip and sticker uploads say why."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from editclient import auth, clip, sticker, sticker_png, submit, upload
from livenode import NodeFactory, RunningNode
from PIL import Image
from soundclient import make_audio
from sources import make_source

from livecore.http import PROBLEM_TYPE


def _edit(clip_id: int, **changes: Any) -> dict[str, Any]:
    decisions: dict[str, Any] = {"clips": [{"clip_id": clip_id, "out_ms": 1500}]}
    decisions.update(changes)
    return decisions


@pytest.fixture
async def maker(node: RunningNode, tmp_path: Path) -> tuple[RunningNode, str, int]:
    creator = await node.signup()
    clip_id = await clip(node, creator["token"], make_source(tmp_path / "c.mp4", seconds=2))
    return node, creator["token"], clip_id


@pytest.mark.parametrize(("change", "status", "slug", "field"), [
    ({"clips": []}, 400, "invalid-field", "clips"),
    ({"clips": [{"clip_id": 0, "out_ms": 1000}]}, 400, "invalid-field", "clips.0.clip_id"),
    ("speed=3", 400, "invalid-field", "clips.0.speed"),
    ("speed=0.25", 400, "invalid-field", "clips.0.speed"),
    ("volume=-1", 400, "invalid-field", "clips.0.volume"),
    ("in_ms=1500", 400, "invalid-field", "clips.0.out_ms"),
    ("spede=2", 400, "invalid-field", "clips.0.spede"),
    ("video_id=7", 400, "invalid-field", "clips.0"),
    ("out_ms=99000", 400, "invalid-field", "clips.0.out_ms"),
    ("second=crossfade", 400, "invalid-field", "clips.1.transition"),
    ("second=crossfade:1200", 400, "invalid-field", "clips.1.transition.duration_ms"),
    ({"texts": [{"text": "hi", "x": 0, "y": 0, "colour": "red"}]}, 400, "invalid-field", "texts.0.colour"),
    ({"texts": [{"text": "hi", "x": 720, "y": 0}]}, 400, "invalid-field", "texts.0.x"),
    ({"texts": [{"text": "hi", "x": 0, "y": 0, "start_ms": 900, "end_ms": 100}]}, 400, "invalid-field",
     "texts.0.end_ms"),
    ({"texts": [{"text": "late", "x": 0, "y": 0, "start_ms": 5000}]}, 400, "invalid-field", "texts.0.start_ms"),
    ({"stitch": {"video_id": 1, "in_ms": 0, "out_ms": 6000}}, 400, "invalid-field", "stitch.out_ms"),
    ({"music": {"sound_id": 999999}}, 404, "sound-not-found", "music.sound_id"),
    ({"stickers": [{"sticker_id": 999999, "x": 0, "y": 0}]}, 404, "sticker-not-found", "stickers.0.sticker_id"),
    ({"duet": {"video_id": 999999}}, 404, "video-not-found", "duet.video_id"),
    ({"challenge_id": 999999}, 404, "challenge-not-found", "challenge_id"),
    ({"hashtags": ["two words"]}, 400, "invalid-field", "hashtags.0"),
])
async def test_a_malformed_edit_is_refused_naming_the_field(maker: tuple[RunningNode, str, int], change: Any,
                                                            status: int, slug: str, field: str) -> None:
    node, token, clip_id = maker
    decisions = _edit(clip_id)
    first = decisions["clips"][0]
    if isinstance(change, dict):
        decisions.update(change)
    elif change.startswith("second="):
        kind, _, ms = change.removeprefix("second=").partition(":")
        transition = {"kind": kind, **({"duration_ms": int(ms)} if ms else {})}
        decisions["clips"].append({"clip_id": clip_id, "out_ms": 1500, "transition": transition})
    else:
        name, value = change.split("=")
        first[name] = float(value) if "." in value else int(value)
    answer_status, problem = await submit(node, token, decisions)
    assert (answer_status, problem["type"], problem.get("field")) == (status, f"livecore:{slug}", field), problem
    assert problem["detail"].startswith(field)


async def test_another_users_clip_and_a_body_that_is_not_json_are_refused(maker: tuple[RunningNode, str, int]
                                                                           ) -> None:
    node, _, clip_id = maker
    other = await node.signup()
    status, problem = await submit(node, other["token"], _edit(clip_id))
    assert status == 404 and problem["type"] == "livecore:clip-not-found" and problem["field"] == "clips.0.clip_id"
    async with node.http.post(f"{node.url}/api/edits", data=b"{not json", headers={
            **auth(other["token"]), "Content-Type": "application/json"}) as response:
        assert response.status == 400 and (await response.json(content_type=None))["type"] == "livecore:malformed-json"
    async with node.http.post(f"{node.url}/api/edits", json=_edit(clip_id)) as response:
        assert response.status == 401


async def test_unsupported_uploads_say_why(node_factory: NodeFactory, tmp_path: Path) -> None:
    node = await node_factory(edit_clip_duration_ms_max=1500, edit_clip_bytes_max=400_000,
                              edit_sticker_edge_px_max=200)
    token = (await node.signup())["token"]
    png = io.BytesIO()
    Image.new("RGB", (16, 16)).save(png, "PNG")
    jpeg = io.BytesIO()
    Image.new("RGB", (16, 16)).save(jpeg, "JPEG")
    cases = [
        ("clips", png.getvalue(), 415, "unsupported-media-type", "PNG"),
        ("clips", b"definitely not a video" * 100, 415, "unsupported-media-type", "not a video"),
        ("clips", make_audio(seconds=1, codec="aac", container_format="mp4"), 400, "clip-without-video",
         "no video track"),
        ("clips", make_source(tmp_path / "long.mp4", seconds=2).read_bytes(), 400, "clip-too-long",
         "edit_clip_duration_ms_max"),
        ("clips", b"\0" * 400_001, 413, "upload-too-large", "edit_clip_bytes_max"),
        ("stickers", jpeg.getvalue(), 415, "unsupported-media-type", "PNG"),
        ("stickers", sticker_png(size=240), 400, "sticker-too-large", "edit_sticker_edge_px_max"),
    ]
    for kind, data, status, slug, why in cases:
        answer_status, problem = await upload(node, token, kind, data)
        assert (answer_status, problem["type"], problem["field"]) == (status, f"livecore:{slug}", "file"), problem
        assert why.lower() in problem["detail"].lower(), problem
    async with node.http.post(f"{node.url}/api/edits/clips", json={"file": "x"}, headers=auth(token)) as response:
        assert response.status == 415 and response.content_type == PROBLEM_TYPE
    form_without_file = {"caption": "no file"}
    async with node.http.post(f"{node.url}/api/edits/clips", data=form_without_file, headers=auth(token)) as response:
        assert response.status in (400, 415)
    clip_id = await clip(node, token, make_source(tmp_path / "ok.mp4", seconds=1))
    assert clip_id > 0 and await sticker(node, token) > 0
