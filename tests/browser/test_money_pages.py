"""Money in the browser: a viewer buys coins with the test provider's card page, sends gifts from the watch page's
tray, and the creator's studio, live from a fake camera, shows the gifts and the top gifters as they happen."""

from __future__ import annotations

import re
from typing import Any

import pytest
from browsing import OpenMediaPage, OpenPage, OpenWatch, go_live, unique
from playwright.async_api import expect

from commerce import COMMERCE, gifts
from livecore.clock import ManualClock

pytestmark = pytest.mark.browser


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def node(node_factory: Any, clock: ManualClock) -> Any:
    """This module's node runs on a manual clock and never sweeps by itself: repeated gifts stay one combo
    however slow the browser is, and a combo ends exactly when the test moves the clock and sweeps."""
    return await node_factory(clock=clock, gift_combo_sweep_ms=3_600_000)


async def test_a_viewers_gifts_show_live_in_the_creators_studio(
    node: Any, clock: ManualClock, open_page: OpenPage, open_watch: OpenWatch, open_media_page: OpenMediaPage,
) -> None:
    creator = await node.signup(unique("host"), roles=["creator"])
    viewer = await node.signup(unique("fan"), display_name="Big Fan")

    wallet = await open_page(f"{node.url}/wallet.html", token=viewer["token"])
    await expect(wallet.locator("#wallet-coins")).to_have_text("0")
    await wallet.locator("#packages button[data-package='coins_100']").click()
    await wallet.wait_for_url("**/pay.html?purchase=*")
    await wallet.locator("#pay-button").click()
    await expect(wallet.locator("#pay-result")).to_have_attribute("data-state", "succeeded")
    await wallet.goto(f"{node.url}/wallet.html")
    await expect(wallet.locator("#wallet-coins")).to_have_text("100")
    await expect(wallet.locator("#history li")).to_have_count(1)

    studio, stream_id = await go_live(node, open_media_page, "Gifts live", creator=creator)
    studio_feed = studio.get_by_role("list", name="Gifts", exact=True)
    studio_leaders = studio.get_by_role("list", name="Top gifters", exact=True)
    await expect(studio.get_by_text("No gifts yet.")).to_be_visible()
    await expect(studio_leaders.get_by_role("listitem")).to_have_count(0)

    fan = await open_watch(stream_id, token=viewer["token"])
    await expect(fan.locator("#gift-tray")).to_be_visible()
    await expect(fan.locator("#coin-balance")).to_have_text("100")
    # Every gift in the tray shows its SVG icon, drawn (the image decoded), with no emoji font needed.
    tray_size = len(node.app[COMMERCE].catalogue.gifts)
    await expect(fan.locator("#gift-list .gift-button img.gift-icon")).to_have_count(tray_size)
    await fan.wait_for_function("""() => [...document.querySelectorAll('#gift-list img.gift-icon')]
        .every((img) => img.complete && img.naturalWidth > 0 && img.src.endsWith('.svg'))""")
    for _ in range(2):
        await fan.get_by_role("button", name="Send Doughnut for 30 coins").click()
        await expect(fan.locator("#gift-feed .gift-burst")).to_have_count(1)
    await expect(fan.locator("#coin-balance")).to_have_text("40")

    burst = studio_feed.get_by_role("listitem")
    await expect(burst).to_have_count(1)
    await expect(burst).to_have_attribute("data-gift", "doughnut")
    await expect(burst.locator("img.gift-icon")).to_have_attribute("src", "/static/icons/gifts/doughnut.svg")
    await expect(burst).to_contain_text("Big Fan sent Doughnut")
    await expect(burst.locator(".gift-combo")).to_have_text("×2")
    leader = studio_leaders.get_by_role("listitem")
    await expect(leader).to_have_count(1)
    await expect(leader.locator(".leader-name")).to_have_text("Big Fan")
    await expect(leader.locator(".leader-coins")).to_have_text("60 coins")
    await expect(studio.get_by_text("No gifts yet.")).to_be_hidden()

    clock.advance(node.node.settings.gift_combo_window_ms / 1000 + 0.1)
    assert await gifts.end_due_combos(node.app[COMMERCE]) == 1
    await expect(burst).to_have_class(re.compile(r"\bended\b"))
    await expect(fan.locator("#gift-feed .gift-burst")).to_have_class(re.compile(r"\bended\b"))

    earnings = await open_page(f"{node.url}/earnings.html", token=creator["token"])
    await expect(earnings.locator("#held-diamonds")).to_have_text("60")
    await expect(earnings.locator("#destination-state")).to_have_text("ready")  # the local provider needs nothing
    await expect(earnings.locator("#destination-button")).to_be_hidden()
