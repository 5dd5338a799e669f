"""The creator marketplace in Chromium: a creator lists themselves from the offers page; an advertiser searches the
marketplace by an interest of the creator's followers, opens the creator's card (its audience split shown) and
sends an offer; the creator accepts it (the price leaves the advertiser's coins into escrow) and delivers their
video (escrow pays the creator's earnings), and the advertiser's list shows it delivered."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import aiohttp
import pytest
from browsing import unique
from clips import make_mp4
from marketplace_people import Person, api, balance, buy_coins, follow, grant, make_people
from playwright.async_api import expect

from feeds import FEEDS

pytestmark = pytest.mark.browser

FEE_PERCENT = 10


@pytest.fixture
async def node(node_factory: Any) -> Any:
    return await node_factory(marketplace_followers_min=3, marketplace_recent_videos_min=1,
                              marketplace_group_size_min=2, marketplace_fee_percent=FEE_PERCENT,
                              account_cache_ms=0)


async def _post_video(node: Any, token: str, caption: str) -> int:
    form = aiohttp.FormData()
    form.add_field("file", make_mp4(seconds=1), filename="clip.mp4", content_type="video/mp4")
    form.add_field("caption", caption)
    async with node.http.post(f"{node.url}/api/videos", data=form,
                              headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 201, await response.text()
        video_id = (await response.json())["id"]
    await node.app[FEEDS].processor.drain()
    return video_id


async def test_advertiser_finds_a_creator_makes_an_offer_and_the_creator_delivers(node: Any, open_page: Any) -> None:
    pool = node.node.pool
    tag = f"t{secrets.token_hex(4)}"
    creator = await node.signup(unique("maker"))
    fans = await make_people(pool, [Person(dt.date(1999, 3, 3), "GB", (tag,))] * 4)
    await follow(pool, fans, creator["id"])
    video_id = await _post_video(node, creator["token"], "our sneakers, unboxed")
    brand = await node.signup(unique("brand"))
    await grant(pool, brand["id"], "advertiser")
    await buy_coins(node, brand["token"], "coins_500")

    failed: list[str] = []  # an unlisted creator's page asks nothing the server must refuse (no console errors)
    inbox = await open_page(f"{node.url}/offers.html", token=creator["token"], before=lambda page: page.on(
        "response", lambda response: failed.append(response.url) if response.status >= 400 else None))
    await expect(inbox.locator("#listing-status")).to_have_text("You are not listed.")
    assert not failed, failed
    await inbox.get_by_role("button", name="List me in the marketplace").click()
    await expect(inbox.locator("#listing-status")).to_have_text("You are listed: brands can find you.")

    search = await open_page(f"{node.url}/marketplace.html", token=brand["token"])
    await expect(search.get_by_role("link", name="Marketplace")).to_have_attribute("aria-current", "page")
    await search.get_by_label("Interest").fill(tag)
    await search.get_by_label("Region").fill("GB")
    await search.get_by_role("button", name="Search").click()
    await expect(search.locator("#search-status")).to_have_text("1 creator shown")
    await search.get_by_role("link", name=creator["display_name"]).click()
    await search.wait_for_url(f"**/creator.html?id={creator['id']}")
    await expect(search.get_by_role("list", name="Interests")).to_contain_text(tag)
    await expect(search.get_by_role("list", name="Regions")).to_contain_text("GB")
    await search.get_by_label("Brief").fill("Unbox our sneakers")
    await search.get_by_label("Price (USD)").fill("2.50")
    await search.get_by_role("button", name="Send offer").click()
    await expect(search.locator("#offer-result")).to_contain_text("of $2.50 sent")

    await inbox.reload()
    offer = inbox.locator("#inbox .offer").first
    await expect(offer).to_contain_text("Unbox our sneakers")
    await offer.get_by_role("button", name="Accept").click()
    await expect(offer).to_have_attribute("data-state", "accepted")
    status, wallet = await api(node, "GET", "/api/wallet", brand["token"])
    assert status == 200 and wallet["coins"] == 500 - 250, wallet
    await offer.get_by_label("Video for offer").select_option(str(video_id))
    await offer.get_by_role("button", name="Deliver").click()
    await expect(offer).to_have_attribute("data-state", "delivered")
    await expect(offer).to_contain_text("Delivered and paid")
    assert await balance(pool, creator["id"], "earnings_withdrawable") == 500 - 500 * FEE_PERCENT // 100
    assert await balance(pool, brand["id"], "offer_escrow") == 0

    sent = await open_page(f"{node.url}/offers.html", token=brand["token"])
    await expect(sent.locator("#sent .offer").first).to_have_attribute("data-state", "delivered")


async def test_who_may_not_search_is_told_why_without_a_form(node: Any, open_page: Any) -> None:
    viewer = await node.signup(unique("viewer"))
    page = await open_page(f"{node.url}/marketplace.html", token=viewer["token"])
    await expect(page.locator("#market-access")).to_contain_text("This account is not an advertiser")
    await expect(page.locator("#search-form")).to_be_hidden()
    await expect(page.get_by_role("button", name="Search")).to_have_count(0)
    await expect(page.locator("#page-banner")).to_be_hidden()

    young = await node.signup(unique("young"), birth_date=(dt.date.today() - dt.timedelta(days=16 * 366)).isoformat())
    await grant(node.node.pool, young["id"], "advertiser")  # the role, but under 18: the server says no
    page = await open_page(f"{node.url}/marketplace.html", token=young["token"])
    await expect(page.locator("#market-access")).to_contain_text("18")
    await expect(page.locator("#search-form")).to_be_hidden()
    await expect(page.locator("#page-banner")).to_be_hidden()
