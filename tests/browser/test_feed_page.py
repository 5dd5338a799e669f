"""The feed page in Chromium: swipe through For You with keys, the wheel and touch, like a video and see it counted,
switch to Following, open a live card."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from browsing import unique
from clips import make_mp4
from playwright.async_api import Page, expect

from feeds import FEEDS

pytestmark = pytest.mark.browser

# For You never repeats a video in a session, so the test's new video comes within as many swipes as the
# shared database has eligible videos (other tests' too: a few hundred in a full run).
SWIPES_MAX = 400


async def _post_video(node: Any, token: str, caption: str) -> int:
    form = aiohttp.FormData()
    form.add_field("file", make_mp4(seconds=2), filename="clip.mp4", content_type="video/mp4")
    form.add_field("caption", caption)
    async with aiohttp.ClientSession() as http, http.post(
            f"{node.url}/api/videos", data=form, headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 201, await response.text()
        video_id = (await response.json())["id"]
    await node.app[FEEDS].processor.drain()
    return video_id


async def _swipe(page: Page, up_px: int) -> None:
    """A one-finger vertical swipe on the feed, as touch events (the page listens to touchstart and touchend)."""
    await page.evaluate("""(up) => {
        const feed = document.getElementById("feed");
        const touch = (y) => new Touch({identifier: 1, target: feed, clientX: 200, clientY: y});
        feed.dispatchEvent(new TouchEvent("touchstart", {touches: [touch(400)], bubbles: true}));
        feed.dispatchEvent(new TouchEvent("touchend", {changedTouches: [touch(400 - up)], bubbles: true}));
    }""", up_px)


def _current(page: Page) -> Any:
    return page.locator(".feed-card.current")


async def test_swipe_like_and_open_a_live_card(node: Any, open_page: Any) -> None:
    creator, host = await node.signup(unique("maker")), await node.signup(unique("host"))
    viewer = await node.signup(unique("fan"))
    ours = {str(await _post_video(node, creator["token"], f"clip {i} {unique('c')}")) for i in range(3)}
    stream = await node.create_stream(host["token"], "live in the feed")
    await node.app[FEEDS].refresh()
    page = await open_page(f"{node.url}/feed.html", token=viewer["token"])
    await expect(_current(page)).to_have_class("feed-card video-card current")
    await page.keyboard.press("ArrowDown")  # the live card comes second on a session's first page
    await expect(_current(page)).to_have_attribute("data-stream-id", str(stream["id"]))
    await page.keyboard.press("ArrowDown")
    await expect(_current(page)).to_have_class("feed-card video-card current")
    third = await _current(page).get_attribute("data-video-id")
    await page.keyboard.press("ArrowUp")
    await expect(_current(page)).to_have_attribute("data-stream-id", str(stream["id"]))
    await page.locator("#feed").hover()
    await page.mouse.wheel(0, 200)  # one wheel gesture moves one card
    await expect(_current(page)).to_have_attribute("data-video-id", third or "")
    await page.keyboard.press("k")
    await expect(_current(page)).to_have_attribute("data-stream-id", str(stream["id"]))
    await _swipe(page, 120)  # a finger moving up 120 px: the next card
    await expect(_current(page)).to_have_attribute("data-video-id", third or "")
    # Swipe on to one of this test's videos: other tests' videos share the database, their files another node's disk.
    for _ in range(40):
        if await _current(page).get_attribute("data-video-id") in ours:
            break
        await page.keyboard.press("ArrowDown")
    mine = _current(page)
    video_id = await mine.get_attribute("data-video-id")
    assert video_id in ours
    await page.wait_for_function(  # it plays by itself, muted
        "() => { const v = document.querySelector('.feed-card.current video'); "
        "return v && v.muted && !v.paused && v.currentTime > 0; }")
    async with page.expect_response(f"{node.url}/api/videos/{video_id}") as recounted:  # after the like is sent
        await mine.locator(".like").click()
    assert (await (await recounted.value).json())["likes"] == 1
    await expect(mine.locator(".likes")).to_have_text("1")
    await expect(mine.locator(".like")).to_have_attribute("aria-pressed", "true")
    assert await node.node.pool.fetchval("SELECT likes FROM videos WHERE id = $1", int(video_id or 0)) == 1
    for _ in range(40):  # back up to the live card
        if await _current(page).get_attribute("data-stream-id"):
            break
        await page.keyboard.press("ArrowUp")
    await _current(page).locator(".watch").click()
    await expect(page).to_have_url(f"{node.url}/watch.html?room={stream['id']}")


async def test_following_tab_and_follow_button(node: Any, open_page: Any) -> None:
    creator, viewer = await node.signup(unique("maker")), await node.signup(unique("fan"))
    caption = f"followed clip {unique('c')}"
    video_id = await _post_video(node, creator["token"], caption)
    await node.app[FEEDS].refresh()
    page = await open_page(f"{node.url}/feed.html", token=viewer["token"])
    await page.locator("#tab-following").click()
    await expect(page.locator("#feed-status")).to_contain_text("follow creators")
    await page.locator("#tab-for-you").click()
    card = page.locator(f'.feed-card[data-video-id="{video_id}"]')
    for _ in range(SWIPES_MAX):  # swipe until the creator's video comes (the shared database holds other tests' videos)
        showing = await _current(page).get_attribute("data-video-id")
        if showing == str(video_id):
            break
        await page.keyboard.press("ArrowDown")
        # One card at a time: a key pressed before the page moved on could swipe past the video for good.
        await expect(_current(page)).not_to_have_attribute("data-video-id", showing or "")
    await expect(card).to_have_class("feed-card video-card current")
    await card.locator(".follow").click()
    await expect(card.locator(".follow")).to_have_text("Following")
    await page.locator("#tab-following").click()
    await expect(_current(page)).to_have_attribute("data-video-id", str(video_id))
    await expect(_current(page).locator(".caption")).to_have_text(caption)


async def test_a_swipe_while_the_next_page_loads_waits_for_it_and_the_end_is_said(node: Any, open_page: Any) -> None:
    creator, viewer = await node.signup(unique("maker")), await node.signup(unique("fan"))
    older = await _post_video(node, creator["token"], f"older {unique('c')}")
    newer = await _post_video(node, creator["token"], f"newer {unique('c')}")
    async with node.http.post(f"{node.url}/api/users/{creator['id']}/follow",
                              headers={"Authorization": f"Bearer {viewer['token']}"}) as response:
            assert response.status < 300, await response.text()
    page = await open_page(f"{node.url}/feed.html", token=viewer["token"])
    held, release = asyncio.Event(), asyncio.Event()

    async def one_per_page(route: Any) -> None:  # pages of one video; the second is held until released
        url = route.request.url.replace("limit=10", "limit=1")
        if "cursor=" in url and not held.is_set():
            held.set()
            await release.wait()
        await route.continue_(url=url)

    await page.route(lambda url: "/api/feed/following?" in url, one_per_page)
    await page.locator("#tab-following").click()
    await expect(_current(page)).to_have_attribute("data-video-id", str(newer))
    await expect(_current(page).locator(".follow")).to_have_text("Following")  # the card knows whom you follow
    await expect(_current(page).locator(".follow")).to_be_disabled()
    await asyncio.wait_for(held.wait(), 15)  # the first card asks for the next page at once
    await page.keyboard.press("ArrowDown")  # past the last card while the next page is loading
    await expect(_current(page)).to_have_attribute("data-video-id", str(newer))
    release.set()
    await expect(_current(page)).to_have_attribute("data-video-id", str(older))
    await page.keyboard.press("ArrowDown")
    await expect(page.locator("#feed-status")).to_have_text("That is everything from the creators you follow.")
    await expect(page.locator("#feed-status")).to_be_visible()
    await expect(_current(page)).to_have_attribute("data-video-id", str(older))
