"""Duets and stitches of another creator's video (credited, and only while they allow it), and cancelling a render
while it runs."""

from __future__ import annotations

from pathlib import Path

from editclient import auth, clip, feed_video, frames_at, rendered, renders_of, submit, until, until_edit
from livenode import RunningNode
from sources import make_source

RED, BLUE = (170, 30, 30), (30, 40, 170)


def _is(pixel: object, colour: tuple[int, int, int]) -> bool:
    return all(abs(int(a) - b) < 30 for a, b in zip(pixel, colour, strict=True))  # type: ignore[call-overload]


async def test_a_duet_and_a_stitch_credit_the_other_creator_until_they_opt_out(node: RunningNode,
                                                                                tmp_path: Path) -> None:
    original, remixer = await node.signup(), await node.signup()
    theirs = await feed_video(node, original["token"], make_source(tmp_path / "red.mp4", seconds=3, colour=RED))
    mine = await clip(node, remixer["token"], make_source(tmp_path / "blue.mp4", seconds=2, colour=BLUE))
    token = remixer["token"]

    video, data = await rendered(node, token, {"clips": [{"clip_id": mine, "out_ms": 1000}],
                                               "duet": {"video_id": theirs}, "caption": "side by side"})
    [beside] = frames_at(data, [500])
    assert _is(beside[640, 180], BLUE) and _is(beside[640, 540], RED), (beside[640, 180], beside[640, 540])
    assert f"duet with @{original['username']}" in video["caption"]

    video, data = await rendered(node, token, {"stitch": {"video_id": theirs, "in_ms": 500, "out_ms": 1500},
                                               "clips": [{"clip_id": mine, "out_ms": 1000}]})
    first, then = frames_at(data, [500, 1500])
    assert _is(first[640, 360], RED) and _is(then[640, 360], BLUE)
    assert f"stitched from @{original['username']}" in video["caption"] and 1900 <= video["duration_ms"] <= 2100

    status, problem = await submit(node, token, {"clips": [{"video_id": theirs, "out_ms": 1000}]})
    assert status == 403 and problem["type"] == "livecore:not-your-video" and problem["field"] == "clips.0.video_id"
    async with node.http.put(f"{node.url}/api/remix-consent", json={"allow_remix": False},
                             headers=auth(original["token"])) as response:
        assert response.status == 200 and (await response.json()) == {"allow_remix": False}
    for remix, field in [({"stitch": {"video_id": theirs, "out_ms": 1000}}, "stitch.video_id"),
                         ({"duet": {"video_id": theirs}}, "duet.video_id")]:
        status, problem = await submit(node, token, {"clips": [{"clip_id": mine, "out_ms": 1000}], **remix})
        assert status == 403 and problem["type"] == "livecore:remix-not-allowed" and problem["field"] == field
    # Their own videos stay theirs to use however they like.
    status, _ = await submit(node, original["token"], {"clips": [{"video_id": theirs, "out_ms": 1000}],
                                                       "duet": {"video_id": theirs}})
    assert status == 202


async def test_cancelling_a_render_stops_its_process_and_makes_no_video(node: RunningNode, tmp_path: Path) -> None:
    creator = await node.signup()
    token = creator["token"]
    long_clip = await clip(node, token, make_source(tmp_path / "long.mp4", seconds=8))
    status, edit = await submit(node, token, {"clips": [{"clip_id": long_clip, "out_ms": 8000}]})
    assert status == 202
    await until_edit(node, token, edit["id"], lambda e: e["state"] == "rendering" and e["progress"] > 0.1)
    renders = renders_of(node)
    assert edit["id"] in renders.processes.running
    async with node.http.delete(f"{node.url}/api/edits/{edit['id']}", headers=auth(token)) as response:
        cancelled = await response.json()
        assert response.status == 200 and cancelled["state"] == "cancelled", cancelled
    await until(lambda: edit["id"] not in renders.processes.running and not renders.rendering(), "the render stopped")
    async with node.http.get(f"{node.url}/api/edits/{edit['id']}", headers=auth(token)) as response:
        after = await response.json()
        assert after["state"] == "cancelled" and after["video_id"] is None, after
    async with node.http.delete(f"{node.url}/api/edits/{edit['id']}", headers=auth(token)) as response:
        assert response.status == 409
    async with node.http.get(f"{node.url}/api/users/{creator['id']}/videos", headers=auth(token)) as response:
        assert (await response.json())["items"] == []
    other = await node.signup()
    async with node.http.get(f"{node.url}/api/edits/{edit['id']}", headers=auth(other["token"])) as response:
        assert response.status == 404
