"""The editor's pages in Chromium: a 3-clip edit with a sound and a caption rendered with the progress bar and found
in the feed; a sound's page crediting its artist and opening the editor with it; the challenges list, a challenge's
ranked videos and joining it."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from browsing import unique
from clips import make_mp4
from playwright.async_api import Page, expect

from feeds import FEEDS

pytestmark = pytest.mark.browser

RENDER_TIMEOUT_MS = 180_000  # three clips rendered in a process of their own, on a machine shared with other tests


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _sound(node: Any, token: str, title: str, artist: str) -> dict[str, Any]:
    from editor.audio import write_tone

    path = node.node.settings.data_dir / f"{title}.m4a"
    write_tone(path, (330.0, 392.0), 250, 3000)
    form = aiohttp.FormData()
    form.add_field("title", title)
    form.add_field("artist", artist)
    form.add_field("licence", "CC-BY-4.0")
    form.add_field("file", path.read_bytes(), filename="tone.m4a", content_type="audio/mp4")
    async with aiohttp.ClientSession() as http, http.post(f"{node.url}/api/sounds", data=form,
                                                          headers=_auth(token)) as response:
        assert response.status == 201, await response.text()
        return await response.json()


async def _video(node: Any, token: str, **fields: str) -> int:
    form = aiohttp.FormData()
    form.add_field("file", make_mp4(seconds=1), filename="clip.mp4", content_type="video/mp4")
    for name, value in fields.items():
        form.add_field(name, value)
    async with aiohttp.ClientSession() as http, http.post(f"{node.url}/api/videos", data=form,
                                                          headers=_auth(token)) as response:
        assert response.status == 201, await response.text()
        video_id = (await response.json())["id"]
    await node.app[FEEDS].processor.drain()
    return int(video_id)


async def _json(node: Any, path: str, method: str = "GET", body: Any = None, token: str | None = None) -> Any:
    async with aiohttp.ClientSession() as http, http.request(method, node.url + path, json=body,
                                                             headers=_auth(token) if token else {}) as response:
        assert response.status < 300, await response.text()
        return await response.json()


async def _choose_sound(page: Page, title: str) -> None:
    await page.locator("#sound-search").fill(title)
    result = page.locator(".sound-result", has_text=title)
    await result.get_by_role("button", name=f"Preview {title}").click()
    await expect(page.locator("#sound-preview")).to_be_visible()
    await result.get_by_role("button", name=f"Use {title}").click()
    await expect(page.locator("#chosen-sound")).to_contain_text(title)


async def test_a_three_clip_edit_with_a_sound_and_a_caption_renders_and_is_in_the_feed(
        node: Any, open_page: Any, tmp_path: Path) -> None:
    creator = await node.signup(unique("maker"))
    title = unique("Morning Bells")
    sound = await _sound(node, creator["token"], title, "Ada Strings")
    files = []
    for index, colour in enumerate([(200, 40, 40), (40, 200, 40), (40, 40, 200)]):
        path = tmp_path / f"clip{index}.mp4"
        path.write_bytes(make_mp4(seconds=2, colour=colour, width=320, height=240))
        files.append(str(path))
    page = await open_page(f"{node.url}/editor.html", token=creator["token"])
    await page.locator("#clip-files").set_input_files(files)
    rows = page.locator(".clip-row")
    await expect(rows).to_have_count(3)
    await expect(page.locator("#render")).to_be_enabled()
    # Trim the first clip with its handles, as a keyboard user would: 0.3 s off its start, 0.5 s off its end.
    first = rows.nth(0)
    for _ in range(3):
        await first.locator(".trim-in").press("ArrowRight")
    for _ in range(5):
        await first.locator(".trim-out").press("ArrowLeft")
    await expect(first.locator(".in-time")).to_have_text("0.3 s")
    await expect(first.locator(".out-time")).to_have_text("1.5 s")
    await rows.nth(1).locator(".speed").select_option("2")
    await expect(page.locator("#edit-length")).to_have_text("4.2 s")  # 1.2 + 2/2 + 2
    await _choose_sound(page, title)
    await page.locator("#text-input").fill("Good morning")
    await page.locator("#add-text").click()
    await expect(page.locator("#overlays")).to_contain_text("Good morning")
    await expect(page.locator("#preview-overlays .preview-text")).to_have_text("Good morning")
    await page.locator("#preview-play").click()  # the preview plays the trimmed clips in the page
    await page.wait_for_function("() => document.getElementById('preview-video').currentTime > 0.3")
    await page.locator("#preview-play").click()
    caption = f"three takes {secrets.token_hex(3)}"
    await page.locator("#caption").fill(caption)
    await page.locator("#hashtags").fill("#morning")
    await page.locator("#render").click()
    await expect(page.locator("#render-state")).to_be_visible()
    await expect(page.locator("#render-progress")).to_be_visible()
    link = page.locator("#video-link")
    await expect(link).to_be_visible(timeout=RENDER_TIMEOUT_MS)
    await expect(page.locator("#render-state")).to_have_attribute("data-state", "done")
    assert await page.locator("#render-progress").evaluate("(bar) => bar.value") == 1
    href = await link.get_attribute("href")
    assert href and href.startswith("/feed.html?video=")
    video_id = int(href.split("=", 1)[1])
    video = await _json(node, f"/api/videos/{video_id}")
    assert (video["state"], video["caption"], video["sound_id"]) == ("ready", caption, sound["id"])
    assert video["hashtags"] == ["morning"] and abs(video["duration_ms"] - 4200) <= 100
    await link.click()
    await page.wait_for_url(f"**/feed.html?video={video_id}")
    current = page.locator(".feed-card.current")
    await expect(current).to_have_attribute("data-video-id", str(video_id))
    await expect(current.locator(".caption")).to_have_text(caption)
    await page.wait_for_function(  # it plays, muted, as every feed video does
        "() => { const v = document.querySelector('.feed-card.current video'); return v && v.currentTime > 0; }")
    assert (await _json(node, f"/api/sounds/{sound['id']}"))["uses"] == 1


async def test_a_sound_page_credits_the_artist_and_opens_the_editor_with_it(node: Any, open_page: Any) -> None:
    creator = await node.signup(unique("maker"))
    title = unique("Harbour Lights")
    sound = await _sound(node, creator["token"], title, "Noor Calloway")
    caption = unique("with the harbour sound")
    video_id = await _video(node, creator["token"], caption=caption, sound_id=str(sound["id"]))
    page = await open_page(f"{node.url}/sound.html?id={sound['id']}", token=creator["token"])
    await expect(page.locator("#sound-title")).to_have_text(title)
    await expect(page.locator("#sound-artist")).to_have_text("Noor Calloway")
    await expect(page.locator("#sound-licence")).to_have_text("CC-BY-4.0")
    await expect(page.locator("#sound-uses")).to_have_text("1 video")
    assert await page.locator("#sound-audio").get_attribute("src") == sound["audio_url"]
    tile = page.locator(f".video-tile[data-video-id='{video_id}']")
    await expect(tile).to_contain_text(caption)
    await page.get_by_role("link", name="Use this sound").click()
    await page.wait_for_url(f"**/editor.html?sound={sound['id']}")
    await expect(page.locator("#chosen-sound")).to_have_text(f"{title} · Noor Calloway")
    missing = await open_page(f"{node.url}/sound.html?id=987654321")
    await expect(missing.locator("#page-banner")).to_have_text("there is no sound 987654321")


async def test_challenges_list_ranked_videos_and_joining_prefills_the_editor(node: Any, open_page: Any) -> None:
    creator = await node.signup(unique("maker"))
    title = unique("Jump Beat")
    sound = await _sound(node, creator["token"], title, "Kit Marlow")
    tag = unique("jump").replace("_", "")
    template = {"texts": [{"text": "Jump!", "x": 60, "y": 200}], "clips": [{"duration_ms": 1500}],
                "caption": "my jump"}
    challenge = await _json(node, "/api/challenges", "POST", {"hashtag": tag, "description": "Jump on the beat",
                                                              "sound_id": sound["id"], "template": template},
                            creator["token"])
    quiet = await _video(node, creator["token"], caption="quiet jump", hashtags=tag)
    loved = await _video(node, creator["token"], caption="loved jump", challenge_id=str(challenge["id"]))
    fan = await node.signup(unique("fan"))
    await _json(node, "/api/engagements", "POST", {"events": [
        {"id": secrets.token_hex(6), "video_id": loved, "kind": "like"},
        {"id": secrets.token_hex(6), "video_id": loved, "kind": "share"},
        {"id": secrets.token_hex(6), "video_id": quiet, "kind": "watch", "watch_ms": 300}]}, fan["token"])
    page = await open_page(f"{node.url}/challenges.html", token=fan["token"])
    await page.locator("#challenge-search").fill(tag)
    row = page.locator(f".challenge-row[data-challenge-id='{challenge['id']}']")
    await expect(row).to_contain_text("Jump on the beat")
    await expect(row).to_contain_text(f"2 videos · ♪ {title} · Kit Marlow")
    await row.get_by_role("link", name=f"#{tag}").click()
    await page.wait_for_url(f"**/challenge.html?id={challenge['id']}")
    await expect(page.locator("#challenge-hashtag")).to_have_text(f"#{tag}")
    await expect(page.locator("#challenge-sound")).to_have_text(title)
    tiles = page.locator(".video-tile")
    await expect(tiles).to_have_count(2)
    assert [await tiles.nth(i).get_attribute("data-video-id") for i in range(2)] == [str(loved), str(quiet)]
    await expect(tiles.nth(0).locator(".rank")).to_have_text("#1")
    await page.get_by_role("link", name="Join the challenge").click()
    await page.wait_for_url(f"**/editor.html?challenge={challenge['id']}")
    await expect(page.locator("#challenge-banner")).to_be_visible()
    await expect(page.locator("#hashtags")).to_have_value(f"#{tag}")
    await expect(page.locator("#caption")).to_have_value("my jump")
    await expect(page.locator("#chosen-sound")).to_have_text(f"{title} · Kit Marlow")
    await expect(page.locator("#overlays")).to_contain_text("Jump!")
    await expect(page.locator("#preview-overlays .preview-text")).to_have_text("Jump!")
    await page.locator("#clip-files").set_input_files([])  # nothing chosen: nothing uploaded, still no render
    await expect(page.locator("#render")).to_be_disabled()


async def test_a_creator_starts_a_challenge_from_the_list(node: Any, open_page: Any) -> None:
    creator = await node.signup(unique("maker"))
    title = unique("Start Tone")
    await _sound(node, creator["token"], title, "Ines Vale")
    tag = unique("start").replace("_", "")
    page = await open_page(f"{node.url}/challenges.html", token=creator["token"])
    await expect(page.get_by_role("link", name="Create")).to_be_visible()
    await page.locator("#new-hashtag").fill(f"#{tag}")
    await page.locator("#new-description").fill("Show us your start")
    await page.locator("#new-sound").select_option(label=f"{title} · Ines Vale")
    await page.get_by_role("button", name="Start the challenge").click()
    await page.wait_for_url("**/challenge.html?id=*")
    await expect(page.locator("#challenge-hashtag")).to_have_text(f"#{tag}")
    await expect(page.locator("#videos-status")).to_have_text("No video has joined yet: be the first.")
    back = await open_page(f"{node.url}/challenges.html", token=creator["token"])
    await back.locator("#new-hashtag").fill(f"#{tag}")
    await back.locator("#new-description").fill("again")
    await back.locator("#new-sound").select_option(label=f"{title} · Ines Vale")
    await back.get_by_role("button", name="Start the challenge").click()
    await expect(back.locator("#challenge-form-result")).to_have_text(f"#{tag} is the hashtag of another challenge "
                                                                      "already")
