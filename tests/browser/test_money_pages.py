"""Money in the browser: a viewer buys coins with the test provider's card page, sends a gift from the watch
page's tray, and the creator's page shows the gift and the top gifters."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import Page, expect

pytestmark = pytest.mark.browser

OpenPage = Callable[..., Awaitable[Page]]
OpenWatch = Callable[..., Awaitable[Page]]


async def test_buy_coins_send_a_gift_and_the_creator_sees_it(node: Any, open_page: OpenPage,
                                                             open_watch: OpenWatch) -> None:
    creator = await node.signup(f"host_{secrets.token_hex(3)}")
    stream = await node.create_stream(creator["token"], "Gifts live")
    viewer = await node.signup(f"fan_{secrets.token_hex(3)}", display_name="Big Fan")

    wallet = await open_page(f"{node.url}/wallet.html", token=viewer["token"])
    await expect(wallet.locator("#wallet-coins")).to_have_text("0")
    await wallet.locator("#packages button[data-package='coins_100']").click()
    await wallet.wait_for_url("**/pay.html?purchase=*")
    await wallet.locator("#pay-button").click()
    await expect(wallet.locator("#pay-result")).to_have_attribute("data-state", "succeeded")
    await wallet.goto(f"{node.url}/wallet.html")
    await expect(wallet.locator("#wallet-coins")).to_have_text("100")
    await expect(wallet.locator("#history li")).to_have_count(1)

    host = await open_watch(stream["id"], token=creator["token"])
    fan = await open_watch(stream["id"], token=viewer["token"])
    await expect(fan.locator("#gift-tray")).to_be_visible()
    await expect(host.locator("#gift-tray")).to_be_hidden()
    await expect(fan.locator("#coin-balance")).to_have_text("100")
    for _ in range(2):
        await fan.get_by_role("button", name="Send Doughnut for 30 coins").click()
        await expect(fan.locator("#gift-feed .gift-burst")).to_have_count(1)
    await expect(fan.locator("#coin-balance")).to_have_text("40")

    burst = host.locator("#gift-feed .gift-burst[data-gift='doughnut']")
    await expect(burst).to_contain_text("Big Fan sent Doughnut")
    await expect(burst.locator(".gift-combo")).to_have_text("×2")
    await expect(host.locator("#top-gifters li")).to_have_count(1)
    await expect(host.locator("#top-gifters li")).to_contain_text("Big Fan")
    await expect(host.locator("#top-gifters li")).to_contain_text("60")

    earnings = await open_page(f"{node.url}/earnings.html", token=creator["token"])
    await expect(earnings.locator("#held-diamonds")).to_have_text("60")
