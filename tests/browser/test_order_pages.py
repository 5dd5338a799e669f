"""Buying at a fixed price in the browser: from a creator's shop page a buyer chooses a variant and quantity, gives an
address whose refusal (a postcode that does not fit the state) shows beside its field, gets the provider's shipping
quote, orders, pays on the local provider's card page and lands on the order, whose tracking timeline follows the
print-on-demand simulator (on its own sped-up clock) to delivered; the creator's sales page shows the sale and its
margin released. The watch page's pinned card opens the same checkout, and an order not paid yet can be cancelled
from the orders page; a buyer with a saved card pays with it from the pinned card, without the card page."""

from __future__ import annotations

import io
import re
from typing import Any

import aiohttp
import pytest
from browsing import ORDER_STEP_TIMEOUT_MS, OpenPage, OpenWatch, unique
from PIL import Image, ImageDraw
from playwright.async_api import Page, expect
from podsim import PodSim

pytestmark = pytest.mark.browser

PRICE_CENTS = 2500  # a black t-shirt's base cost is 1295, the fees 10 % + 30 cents: the margin is 925 per item
MARGIN_CENTS = PRICE_CENTS - 1295 - (PRICE_CENTS // 10 + 30)
ADDRESS = {"Full name": "Ada Buyer", "Address": "1 Main St", "City": "Beverly Hills", "State or region": "CA",
           "Postcode": "90210", "Country": "US"}


@pytest.fixture
async def node(node_factory: Any, podsim: PodSim) -> Any:
    return await node_factory(fulfilment_url=podsim.url, fulfilment_webhook_secret=podsim.secret)


def design_png() -> bytes:
    image = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse([40, 40, 360, 360], fill=(250, 190, 40, 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def shop_product(node: Any, creator: dict[str, Any]) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {creator['token']}"}
    form = aiohttp.FormData()
    form.add_field("file", design_png(), filename="sun.png", content_type="image/png")
    async with node.http.post(f"{node.url}/api/designs", data=form, headers=auth) as response:
        assert response.status == 201, await response.text()
        design = await response.json()
    body = {"design_id": design["id"], "base_item_id": "tshirt", "title": "Sunny Tee", "price_cents": PRICE_CENTS,
            "variant_ids": ["tshirt-s-black", "tshirt-m-black"]}
    async with node.http.post(f"{node.url}/api/products", json=body, headers=auth) as response:
        assert response.status == 201, await response.text()
        return await response.json()


async def fill_address(page: Page, scope: str, address: dict[str, str]) -> None:
    fields = page.locator(scope)
    for label, value in address.items():
        await fields.get_by_label(label, exact=True).fill(value)


async def test_checkout_from_the_shop_page_to_a_delivered_order(
    node: Any, open_page: OpenPage,
) -> None:
    creator = await node.signup(unique("maker"), display_name="Sun Maker", roles=["creator"])
    buyer = await node.signup(unique("buyer"), display_name="Ada Buyer")
    await shop_product(node, creator)

    shop = await open_page(f"{node.url}/shop.html?user={creator['id']}", token=buyer["token"])
    await shop.get_by_role("button", name="Buy Sunny Tee").click()
    checkout = shop.get_by_role("dialog", name="Buy Sunny Tee")
    await expect(checkout).to_be_visible()
    await checkout.get_by_label("Size and colour").select_option(label="M · black")
    await checkout.get_by_label("Quantity").fill("2")
    await fill_address(shop, "#ship-address", {**ADDRESS, "Postcode": "10001"})  # a New York ZIP code
    await checkout.get_by_role("button", name="Get shipping quote").click()
    postcode = checkout.get_by_label("Postcode")
    await expect(shop.locator("#ship-postcode-error")).to_contain_text("United States postcodes look like")
    await expect(postcode).to_have_attribute("aria-invalid", "true")
    await expect(postcode).to_be_focused()
    await expect(checkout.get_by_role("button", name="Place order and pay")).to_be_disabled()

    await postcode.fill("90210")
    await expect(postcode).not_to_have_attribute("aria-invalid", "true")
    await checkout.get_by_role("button", name="Get shipping quote").click()
    # Two items inside the US: $4.75 for the first and $2.25 for the second (the simulator's domestic rate).
    await expect(shop.locator("#checkout-quote-line")).to_have_text(
        "Shipping $7.00 (Standard (domestic), 3–5 days) · Total $57.00")
    await checkout.get_by_role("button", name="Place order and pay").click()

    await shop.wait_for_url(re.compile(r"/pay\.html\?order=\d+$"))
    order_id = int(shop.url.rsplit("=", 1)[1])
    await expect(shop.locator("#pay-summary")).to_have_text(
        f"Order {order_id}: Sunny Tee × 2 · items $50.00 + shipping $7.00 = $57.00 (pending)")
    await shop.get_by_role("button", name="Pay").click()

    await shop.wait_for_url(re.compile(rf"/orders\.html\?order={order_id}$"))
    order = shop.locator(f"#order-{order_id}")
    await expect(order.get_by_role("heading", name=f"Order {order_id}")).to_be_focused()
    await expect(order.locator(".order-items")).to_have_text("Sunny Tee (tshirt-m-black) × 2")
    await expect(order.locator(".order-money")).to_have_text("$50.00 + shipping $7.00 = $57.00")
    await expect(order.locator(".order-where")).to_contain_text("to Ada Buyer, Beverly Hills, US-CA, 90210, US")
    # The simulator makes, ships and delivers it on its own clock; the page follows without being reloaded.
    await expect(order).to_have_attribute("data-state", "delivered", timeout=ORDER_STEP_TIMEOUT_MS)
    timeline = order.get_by_role("list", name=f"Tracking of order {order_id}")
    await expect(timeline.locator(".step .step-label")).to_have_text(
        ["Ordered", "Paid", "In production", "Shipped", "Delivered"])
    await expect(timeline.locator(".step[data-done='true']")).to_have_count(5)
    await expect(timeline.locator(".step[aria-current='step']")).to_have_attribute("data-step", "delivered")
    tracking = timeline.locator(".step[data-step='shipped'] .tracking a")
    await expect(tracking).to_have_attribute("href", re.compile(r"^https://tracking\.example/"))
    await expect(order.get_by_role("button", name="Cancel order")).to_have_count(0)

    # The address was saved with the quote (the box is ticked by default): the orders page shows it.
    await expect(shop.locator("#saved-address").get_by_label("Postcode")).to_have_value("90210")

    sales = await open_page(f"{node.url}/sales.html", token=creator["token"])
    row = sales.locator(f"#sale-{order_id}")
    await expect(row).to_have_attribute("data-released", "true")
    await expect(row.locator("td")).to_have_text(
        [str(order_id), re.compile(r"\S"), "Sunny Tee (tshirt-m-black) × 2", "$50.00",
         f"${2 * MARGIN_CENTS / 100:.2f} · released", "Delivered"])
    await expect(sales.locator("#margin-released")).to_have_text(f"${2 * MARGIN_CENTS / 100:.2f}")
    await expect(sales.locator("#margin-held")).to_have_text("$0.00")
    await expect(sales.get_by_role("navigation", name="Main").get_by_role("link", name="Sales")).to_have_attribute(
        "aria-current", "page")


async def test_the_pinned_card_opens_the_checkout_and_a_guest_is_asked_to_log_in(
    node: Any, open_page: OpenPage, open_watch: OpenWatch,
) -> None:
    creator = await node.signup(unique("maker"), display_name="Sun Maker", roles=["creator"])
    buyer = await node.signup(unique("buyer"))
    made = await shop_product(node, creator)
    stream = await node.create_stream(creator["token"], "Pinned sale")
    async with node.http.post(f"{node.url}/api/streams/{stream['id']}/pin", json={"product_id": made["id"]},
                              headers={"Authorization": f"Bearer {creator['token']}"}) as response:
        assert response.status == 200, await response.text()
    async with node.http.put(f"{node.url}/api/shipping-address", json={
            "name": "Ben Buyer", "line1": "10 Downing St", "city": "London", "postcode": "SW1A 2AA",
            "country": "GB"}, headers={"Authorization": f"Bearer {buyer['token']}"}) as response:
        assert response.status == 200, await response.text()

    fan = await open_watch(stream["id"], token=buyer["token"])
    card = fan.locator("#pinned-product")
    await card.get_by_label("Size and colour").select_option(label="M · black")
    await card.get_by_role("button", name="Buy").click()
    checkout = fan.get_by_role("dialog", name="Buy Sunny Tee")
    await expect(checkout.get_by_label("Size and colour")).to_have_value("tshirt-m-black")
    await expect(checkout.get_by_label("Postcode")).to_have_value("SW1A 2AA")  # the saved address
    await checkout.get_by_role("button", name="Get shipping quote").click()
    await expect(fan.locator("#checkout-quote-line")).to_have_text(
        "Shipping $11.99 (Standard (international), 7–14 days) · Total $36.99")
    await checkout.get_by_role("button", name="Place order and pay").click()
    await fan.wait_for_url(re.compile(r"/pay\.html\?order=\d+$"))
    order_id = int(fan.url.rsplit("=", 1)[1])

    # Not paid yet: the orders page offers to pay it or cancel it; cancelled, the timeline ends there.
    orders = await open_page(f"{node.url}/orders.html", token=buyer["token"])
    order = orders.locator(f"#order-{order_id}")
    await expect(order.locator(".order-state")).to_have_text("Waiting for payment")
    await expect(order.get_by_role("link", name="Pay now")).to_have_attribute("href", f"/pay.html?order={order_id}")
    await order.get_by_role("button", name="Cancel order").click()
    await expect(order).to_have_attribute("data-state", "cancelled")
    await expect(order.locator(".timeline .off-path")).to_have_text(re.compile(r"^Cancelled.*cancelled by the buyer$"))
    await expect(order.locator(".timeline .step[data-done='true']")).to_have_count(2)  # ordered, then cancelled
    await expect(order.get_by_role("button", name="Cancel order")).to_have_count(0)
    await expect(order.get_by_role("link", name="Pay now")).to_have_count(0)

    guest = await open_watch(stream["id"])
    await guest.locator("#pinned-product").get_by_role("button", name="Buy").click()
    await guest.wait_for_url(re.compile(r"/login\.html\?next="))
    assert f"room%3D{stream['id']}" in guest.url or f"room={stream['id']}" in guest.url


async def test_a_buyer_with_a_saved_card_pays_with_it_from_the_pinned_card(
    node: Any, open_watch: OpenWatch,
) -> None:
    creator = await node.signup(unique("maker"), display_name="Sun Maker", roles=["creator"])
    buyer = await node.signup(unique("buyer"))
    made = await shop_product(node, creator)
    stream = await node.create_stream(creator["token"], "Pinned sale")
    auth = {"Authorization": f"Bearer {buyer['token']}"}
    async with node.http.post(f"{node.url}/api/streams/{stream['id']}/pin", json={"product_id": made["id"]},
                              headers={"Authorization": f"Bearer {creator['token']}"}) as response:
        assert response.status == 200, await response.text()
    async with node.http.post(f"{node.url}/api/payment-methods", json={"card_number": "4242424242424242"},
                              headers=auth) as response:
        assert response.status == 201, await response.text()

    fan = await open_watch(stream["id"], token=buyer["token"])
    card = fan.locator("#pinned-product")
    await card.get_by_label("Size and colour").select_option(label="M · black")
    await card.get_by_role("button", name="Buy").click()
    checkout = fan.get_by_role("dialog", name="Buy Sunny Tee")
    await fill_address(fan, "#ship-address", ADDRESS)
    saved = checkout.get_by_role("radio", name="Pay with saved card ····4242")
    await expect(saved).to_be_checked()
    await expect(checkout.get_by_role("radio", name="Another card (card page)")).not_to_be_checked()
    await checkout.get_by_role("button", name="Get shipping quote").click()
    await expect(fan.locator("#checkout-quote-line")).to_have_text(
        "Shipping $4.75 (Standard (domestic), 3–5 days) · Total $29.75")
    await checkout.get_by_role("button", name="Place order and pay").click()

    await fan.wait_for_url(re.compile(r"/orders\.html\?order=\d+$"))
    order_id = int(fan.url.rsplit("=", 1)[1])
    order = fan.locator(f"#order-{order_id}")
    await expect(order).to_have_attribute("data-state", re.compile(r"^(paid|in_production)$"),
                                          timeout=ORDER_STEP_TIMEOUT_MS)
    await expect(order.get_by_role("link", name="Pay now")).to_have_count(0)
    async with node.http.get(f"{node.url}/api/orders/{order_id}", headers=auth) as response:
        found = await response.json()
    assert found["state"] in ("paid", "in_production", "shipped", "delivered"), found
    assert [h["state"] for h in found["history"]][:2] == ["pending", "paid"]
