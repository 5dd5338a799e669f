"""The ads pages in Chromium: an advertiser creates a campaign on the dashboard (uploading its video there), a
viewer sees the ad in the For You feed labelled Sponsored with who paid and why, the page measures the impression
(and its viewability), and the advertiser's report counts it."""

from __future__ import annotations

import secrets
from typing import Any

import aiohttp
import pytest
from browsing import unique
from clips import make_mp4
from playwright.async_api import Page, expect

from ads import ADS, billing
from feeds import FEEDS

pytestmark = pytest.mark.browser

SWIPES_MAX = 30


async def _post_video(node: Any, token: str) -> None:
    form = aiohttp.FormData()
    form.add_field("file", make_mp4(seconds=1), filename="clip.mp4", content_type="video/mp4")
    async with aiohttp.ClientSession() as http, http.post(
            f"{node.url}/api/videos", data=form, headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 201, await response.text()


async def _counted(node: Any, campaign_id: int, user_id: int, kind: str) -> int:
    return await node.node.pool.fetchval(
        "SELECT count(*) FROM ad_events WHERE campaign_id = $1 AND user_id = $2 AND kind = $3",
        campaign_id, user_id, kind)


async def _create_campaign(page: Page, hobby: str) -> None:
    await page.locator("#name").fill("Spring shoes")
    await page.locator("#budget_daily").fill("20")
    await page.locator("#budget_lifetime").fill("100")
    await page.locator("#bid").fill("900")  # $900 CPM: it wins every auction it enters
    await page.locator("#frequency").fill("20")
    await page.locator('input[name="age_band"][value="25-34"]').check()
    await page.locator("#interests").fill(hobby)
    await page.locator("#upload").set_input_files(
        {"name": "ad.mp4", "mimeType": "video/mp4", "buffer": make_mp4(seconds=2)})
    await page.locator("#headline").fill("Run further")
    await page.locator("#landing_url").fill("https://example.com/shoes")
    await page.locator("#create-campaign").click()


async def test_an_advertiser_creates_a_campaign_and_a_viewer_sees_it_labelled(node: Any, open_page: Any) -> None:
    # other tests' campaigns: not in the way
    await node.node.pool.execute("UPDATE ad_campaigns SET state = 'paused' WHERE state = 'active'")
    try:
        await _run(node, open_page)
    finally:
        await node.node.pool.execute("UPDATE ad_campaigns SET state = 'paused' WHERE state = 'active'")


async def _run(node: Any, open_page: Any) -> None:
    hobby = f"trail{secrets.token_hex(3)}"
    advertiser = await node.signup(unique("brand"), roles=["advertiser", "creator"], display_name="Trail Co")
    assert await billing.fund(node.node.pool, node.app[ADS].accounts, advertiser["id"], 50_000,
                              unique("invoice"), node.node.clock.now_ms(), advertiser["id"])
    author = await node.signup(unique("maker"))
    for _ in range(8):  # enough organic videos for a page with an ad slot
        await _post_video(node, author["token"])
    await node.app[FEEDS].processor.drain()
    await node.app[FEEDS].refresh()

    dashboard = await open_page(f"{node.url}/ads.html", token=advertiser["token"])
    await expect(dashboard.locator('.site-nav a[href="/ads.html"]')).to_have_attribute("aria-current", "page")
    await expect(dashboard.locator("#ad-balance")).to_have_text("$500.00")
    await _create_campaign(dashboard, hobby)
    row = dashboard.locator("#campaign-rows tr").first
    await expect(row).to_contain_text("Spring shoes", timeout=60_000)  # after the upload is processed
    await expect(row).to_have_attribute("data-state", "active")
    await expect(dashboard.locator("#ad-held")).to_have_text("$100.00")
    await expect(dashboard.locator("#report-totals")).to_have_attribute("data-impressions", "0")

    viewer = await node.signup(unique("fan"), birth_date="1995-03-01", interests=[hobby])
    feed = await open_page(f"{node.url}/feed.html", token=viewer["token"])
    current = feed.locator(".feed-card.current")
    await expect(current).to_be_visible()
    for _ in range(SWIPES_MAX):
        if "ad-card" in (await current.get_attribute("class") or ""):
            break
        before = await current.get_attribute("data-video-id")
        await feed.keyboard.press("ArrowDown")
        await expect(current).not_to_have_attribute("data-video-id", before or "")
    ad = feed.locator(".feed-card.ad-card.current")
    await expect(ad.locator(".badge")).to_have_text("Sponsored")
    await expect(ad.locator(".sponsor")).to_have_text("Paid for by Trail Co")
    await ad.locator(".why-ad summary").click()
    await expect(ad.locator(".reasons")).to_contain_text(f"Your interests: {hobby}")
    await expect(ad.locator(".reasons")).to_contain_text("Your age (25-34)")
    campaign_id = int(await ad.get_attribute("data-campaign-id") or 0)
    # The page sends the impression at once and, after 2 s with the player in view, the viewable impression.
    for kind in ("impression", "viewable"):
        while not await _counted(node, campaign_id, viewer["id"], kind):
            await feed.wait_for_event("response", lambda r: r.url.endswith("/api/ads/events"), timeout=15_000)

    await dashboard.reload()
    await dashboard.locator("#campaign-rows tr").first.locator(".show-report").click()
    await expect(dashboard.locator("#report-totals")).to_have_attribute("data-impressions", "1")
    await expect(dashboard.locator("#report-chart svg .impressions-bar")).to_have_count(1)
