"""Merch and live auctions in the browser: a creator makes a product from a design and runs an auction from the studio
(live from a fake camera); two viewers bid from their watch pages, one saving a card when the first bid is refused
for the lack of one; the loser sees that they were outbid; at the close every page names the winner, and a page that
joins afterwards shows the same panel; the winner's saved card is charged off-session and their orders page follows
the order to shipped. The node runs on a manual clock far from the browser's, so the countdowns only read right if
the pages correct for the clock offset, and the auction ends exactly when the test moves the clock and sweeps; the
print-on-demand simulator runs on its own sped-up clock."""

from __future__ import annotations

import asyncio
import io
import re
from typing import Any

import aiohttp
import pytest
from browsing import ORDER_STEP_TIMEOUT_MS, OpenMediaPage, OpenPage, OpenWatch, go_live, unique
from PIL import Image, ImageDraw
from playwright.async_api import Page, WebSocketRoute, expect
from podsim import PodSim

from commerce import COMMERCE
from commerce.auctions import auctions
from commerce.providers import SUCCEEDING_CARD
from livecore.clock import ManualClock

pytestmark = pytest.mark.browser

# Long enough that the pages' countdowns, which run on while the node's manual clock stands still, never reach zero
# during the test.
DURATION_S = 600
# The countdown of a ten-minute auction as "m:ss": a page reading the browser's clock against the node's (months
# apart here) would show hundreds of hours, or zero.
COUNTDOWN = re.compile(r"^(10:00|\d:[0-5]\d)$")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def node(node_factory: Any, clock: ManualClock, podsim: PodSim) -> Any:
    """The sweep never runs by itself: the auction closes when the test has moved the clock and swept. Winners
    are charged by the node's payment sweep as usual, and their orders made by the simulator."""
    return await node_factory(clock=clock, auction_sweep_ms=3_600_000, fulfilment_url=podsim.url,
                              fulfilment_webhook_secret=podsim.secret)


def design_png() -> bytes:
    image = Image.new("RGBA", (480, 360), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse([40, 40, 300, 320], fill=(240, 60, 100, 255))
    draw.rectangle([320, 80, 440, 280], fill=(40, 140, 230, 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def image_drawn(page: Page, selector: str) -> None:
    await page.wait_for_function(
        "(selector) => { const img = document.querySelector(selector);"
        " return img && img.complete && img.naturalWidth > 0; }", arg=selector)


async def make_product(studio: Page) -> None:
    """Upload a design, choose black S and M t-shirts, try a price under the floor, then a fair one."""
    form = studio.locator("#product-form")
    await form.get_by_label("Design (PNG or JPEG)").set_input_files(
        {"name": "night-owl.png", "mimeType": "image/png", "buffer": design_png()})
    await expect(studio.locator("#design-status")).to_have_text("Design ready: 480 × 360 px.")
    await form.get_by_label("Item").select_option("tshirt")
    sizes = form.get_by_role("group", name="Sizes")
    colours = form.get_by_role("group", name="Colours")
    for size in ("L", "XL", "2XL"):
        await sizes.get_by_label(size, exact=True).uncheck()
    for colour in ("white", "navy", "heather grey"):
        await colours.get_by_label(colour, exact=True).uncheck()
    await form.get_by_label("Title").fill("Night Owl Tee")
    await form.get_by_label("Price (USD)").fill("5")
    await form.get_by_role("button", name="Create product").click()
    # The server's floor for a black S/M t-shirt (1295 base + 10 % + 30 cents), from its problem+json.
    await expect(studio.locator("#product-error")).to_have_text(
        "The price must be at least $14.73 to cover making it and the fees.")
    await expect(form.get_by_label("Price (USD)")).to_have_attribute("aria-invalid", "true")
    await form.get_by_label("Price (USD)").fill("30")
    await form.get_by_role("button", name="Create product").click()
    row = studio.locator("#product-list .product-row", has_text="Night Owl Tee")
    await expect(row).to_contain_text("T-shirt · $30.00")
    await image_drawn(studio, "#product-list .product-row img")


async def start_auction(studio: Page) -> None:
    form = studio.locator("#auction-form")
    await expect(form.get_by_label("Product")).to_have_value(re.compile(r"^\d+$"))
    await form.get_by_label("Size and colour").select_option(label="S · black")
    await form.get_by_label("Starting bid (USD)").fill("20")
    await form.get_by_label("Duration").select_option(str(DURATION_S))
    await form.get_by_label("Bid steps").select_option("dollar")
    await form.get_by_label("Buy it now (USD, optional)").fill("80")
    await studio.get_by_role("button", name="Start auction").click()
    await expect(studio.locator("#auction-panel")).to_have_attribute("data-state", "open")
    await expect(studio.get_by_role("button", name="Start auction")).to_be_disabled()


async def expect_panel(page: Page, *, price: str, who: str, label: str) -> None:
    await expect(page.locator("#auction-price")).to_have_text(price)
    await expect(page.locator("#auction-leader")).to_have_text(who)
    await expect(page.locator("#auction-leader").locator("xpath=preceding-sibling::dt")).to_have_text(label)


async def test_a_studio_auction_with_two_bidders_on_watch_pages(
    node: Any, clock: ManualClock, open_page: OpenPage, open_watch: OpenWatch, open_media_page: OpenMediaPage,
) -> None:
    creator = await node.signup(unique("host"), display_name="Studio Host", roles=["creator"])
    alice = await node.signup(unique("alice"), display_name="Alice Bidder")
    bob = await node.signup(unique("bob"), display_name="Bob Bidder")
    async with node.http.post(f"{node.url}/api/payment-methods", json={"card_number": SUCCEEDING_CARD},
                              headers={"Authorization": f"Bearer {alice['token']}"}) as saved:
        assert saved.status == 201, await saved.text()
    # Alice gives the address her wins ship to on her orders page; a postcode that is not Californian is refused.
    orders = await open_page(f"{node.url}/orders.html", token=alice["token"])
    await expect(orders.locator("#orders-status")).to_have_text("No orders yet.")
    address = orders.locator("#saved-address")
    for label, value in {"Full name": "Alice Bidder", "Address": "1 Main St", "City": "Beverly Hills",
                         "State or region": "CA", "Postcode": "10001", "Country": "US"}.items():
        await address.get_by_label(label, exact=True).fill(value)
    await orders.get_by_role("button", name="Save address").click()
    await expect(orders.locator("#saved-postcode-error")).to_contain_text("postcodes look like")
    await address.get_by_label("Postcode").fill("90210")
    await orders.get_by_role("button", name="Save address").click()
    await expect(orders.locator("#saved-address-result")).to_have_text("Address saved.")

    studio, stream_id = await go_live(node, open_media_page, "Merch drop", creator=creator)
    await expect(studio.get_by_role("heading", name="Merch")).to_be_visible()
    await make_product(studio)
    await studio.get_by_role("button", name="Pin Night Owl Tee in your room").click()
    await expect(studio.locator("#product-list .product-row.pinned")).to_contain_text("Pinned")

    fan_a = await open_watch(stream_id, token=alice["token"])
    fan_b = await open_watch(stream_id, token=bob["token"])
    for fan in (fan_a, fan_b):
        card = fan.locator("#pinned-product")
        await expect(card.get_by_role("heading", name="Night Owl Tee")).to_be_visible()
        await expect(card.locator("#pinned-price")).to_have_text("$30.00")
        await expect(card.get_by_role("link", name="More from Studio Host")).to_be_visible()
        await image_drawn(fan, "#pinned-mockup")
        await expect(fan.locator("#auction-panel")).to_be_hidden()

    await start_auction(studio)
    for fan in (fan_a, fan_b):
        await expect(fan.locator("#auction-panel")).to_have_attribute("data-state", "open")
        await expect(fan.locator("#auction-title")).to_have_text("Night Owl Tee")
        await expect(fan.locator("#auction-variant")).to_have_text("T-shirt · S · black")
        await expect(fan.locator("#auction-countdown")).to_have_text(COUNTDOWN)
        await expect_panel(fan, price="$20.00", who="No bids yet", label="Leader")
        await expect(fan.locator("#bid-buttons button")).to_have_text(["Bid $20.00", "Bid $21.00", "Bid $22.00"])
        await expect(fan.get_by_role("button", name="Buy it now · $80.00")).to_be_visible()
    await expect(studio.locator("#auction-countdown")).to_have_text(COUNTDOWN)
    await expect(studio.locator("#auction-standing")).to_have_text("0 bids so far.")

    await fan_a.get_by_role("button", name="Bid $20.00").click()
    await expect(fan_a.locator("#auction-standing")).to_have_text("You're the highest bidder.")
    await expect(fan_a.locator("#auction-your-max")).to_have_text("$20.00")
    for page in (fan_b, studio):
        await expect_panel(page, price="$20.00", who="Alice Bidder", label="Leader")

    # Bob has no card: the bid is refused with 402, he saves the local test card, and the same bid goes in.
    await expect(fan_b.locator("#bid-buttons button")).to_have_text(["Bid $21.00", "Bid $22.00", "Bid $23.00"])
    await fan_b.get_by_role("button", name="Bid $21.00").click()
    await expect(fan_b.locator("#bid-error")).to_have_text("Bidding needs a saved card, so a win can be charged.")
    await expect(fan_b.get_by_label("Card number")).to_be_focused()
    await fan_b.get_by_role("button", name="Save card and bid $21.00").click()
    await expect(fan_b.locator("#card-line")).to_have_text("Card saved: your visa card ending in 4242.")
    await expect(fan_b.locator("#auction-standing")).to_have_text("You're the highest bidder.")
    await expect(fan_a.locator("#auction-standing")).to_have_text(re.compile("outbid"))
    await expect(fan_a.locator("#auction-your-max")).to_have_text("$20.00 (passed)")

    # Alice bids by proxy up to $30: she leads at Bob's $21 plus one step; Bob's next bid is answered at once.
    await fan_a.get_by_label("Your maximum bid (USD)").fill("30")
    await fan_a.get_by_role("button", name="Bid up to this").click()
    await expect(fan_a.locator("#auction-standing")).to_have_text("You're the highest bidder.")
    await expect(fan_a.locator("#auction-your-max")).to_have_text("$30.00")
    await expect_panel(fan_b, price="$22.00", who="Alice Bidder", label="Leader")
    await expect(fan_b.locator("#auction-standing")).to_have_text("You've been outbid. Bid again to win it back.")
    await fan_b.get_by_role("button", name="Bid $23.00").click()
    await expect(fan_b.locator("#bid-error")).to_have_text(
        "Another bidder's maximum was higher: you were outbid at once.")
    for page in (fan_a, fan_b, studio):
        await expect_panel(page, price="$24.00", who="Alice Bidder", label="Leader")
        await expect(page.locator("#auction-bids li").first).to_have_text("Alice Bidder $24.00 (automatic bid)")
    await expect(fan_b.locator("#auction-standing")).to_contain_text("outbid")

    clock.advance(DURATION_S + 1)
    assert len(await auctions.close_due(node.app[COMMERCE].auctions)) == 1
    for page in (fan_a, fan_b, studio):
        await expect(page.locator("#auction-panel")).to_have_attribute("data-state", "closed")
        await expect(page.get_by_role("heading", name="Auction ended")).to_be_visible()
        await expect_panel(page, price="$24.00", who="Alice Bidder", label="Winner")
        await expect(page.locator("#auction-countdown")).to_have_text("Ended")
    await expect(fan_a.locator("#auction-standing")).to_have_text("You won it for $24.00!")
    await expect(fan_b.locator("#auction-standing")).to_have_text(
        "Sold to Alice Bidder for $24.00. You were outbid.")
    await expect(studio.locator("#auction-standing")).to_have_text("Sold to Alice Bidder for $24.00.")
    for fan in (fan_a, fan_b):
        await expect(fan.locator("#bidding")).to_be_hidden()
    await expect(studio.get_by_role("button", name="Start auction")).to_be_enabled()
    await expect(fan_b.get_by_role("link", name=re.compile("Follow your order"))).to_be_hidden()

    # The winner is charged off-session on her saved card by the node's payment sweep; the orders page she already
    # has open shows the order arrive and follows it through the simulator to shipped.
    await fan_a.get_by_role("link", name=re.compile("Follow your order")).click()
    await fan_a.wait_for_url("**/orders.html")
    order = orders.locator(".order").first
    await expect(order).to_have_attribute("data-state", re.compile("^(shipped|delivered)$"),
                                          timeout=ORDER_STEP_TIMEOUT_MS)
    await expect(order.locator(".order-where")).to_contain_text("Won at auction")
    await expect(order.locator(".order-items")).to_have_text("Night Owl Tee (tshirt-s-black) × 1")
    await expect(order.locator(".order-money")).to_have_text("$24.00 + shipping $4.75 = $28.75")
    await expect(order.locator(".timeline .step[data-step='shipped'] .tracking a")).to_have_attribute(
        "href", re.compile(r"^https://tracking\.example/"))
    charged = await node.node.pool.fetchrow(
        "SELECT a.state, o.buyer_id, o.total_cents FROM auction_payment_attempts a JOIN orders o ON o.id = a.order_id"
        " JOIN auctions u ON u.id = a.auction_id WHERE u.stream_id = $1", int(stream_id))
    assert tuple(charged) == ("paid", alice["id"], 2875)
    await expect(fan_a.locator(".order")).to_have_count(1)

    # A page joining now folds the snapshot alone and shows what the pages that folded every event show.
    late = await open_watch(stream_id)
    await expect(late.locator("#auction-panel")).to_have_attribute("data-state", "closed")
    for part in ("#auction-title", "#auction-variant", "#auction-price", "#auction-leader", "#auction-bids li"):
        await expect(late.locator(part)).to_have_text(await fan_b.locator(part).all_inner_texts())
    await expect(late.locator("#auction-standing")).to_have_text("Sold to Alice Bidder for $24.00.")


async def test_buy_it_now_ends_the_auction_for_everyone(
    node: Any, open_watch: OpenWatch, open_media_page: OpenMediaPage,
) -> None:
    creator = await node.signup(unique("host"), display_name="Quick Seller", roles=["creator"])
    buyer = await node.signup(unique("buyer"), display_name="Fast Buyer")
    async with node.http.post(f"{node.url}/api/payment-methods", json={"card_number": SUCCEEDING_CARD},
                              headers={"Authorization": f"Bearer {buyer['token']}"}) as saved:
        assert saved.status == 201
    studio, stream_id = await go_live(node, open_media_page, "Flash sale", creator=creator)
    await make_product(studio)
    fan = await open_watch(stream_id, token=buyer["token"])
    guest = await open_watch(stream_id)
    await start_auction(studio)
    await expect(guest.get_by_role("link", name="Log in to bid")).to_be_visible()
    await expect(guest.locator("#bidding")).to_be_hidden()

    await fan.get_by_role("button", name="Buy it now · $80.00").click()
    await fan.get_by_role("button", name="Cancel").click()
    await expect(fan.locator("#auction-panel")).to_have_attribute("data-state", "open")
    await fan.get_by_role("button", name="Buy it now · $80.00").click()
    await fan.get_by_role("button", name="Confirm: buy for $80.00").click()
    await expect(fan.locator("#auction-standing")).to_have_text("You won it for $80.00!")
    for page in (guest, studio):
        await expect_panel(page, price="$80.00", who="Fast Buyer", label="Winner")
        await expect(page.locator("#auction-bids li").first).to_have_text("Fast Buyer bought it now for $80.00")
    await expect(guest.get_by_role("link", name="Log in to bid")).to_be_hidden()


async def test_a_creators_shop_page_lists_their_products_with_mockups(
    node: Any, open_page: OpenPage, open_media_page: OpenMediaPage,
) -> None:
    creator = await node.signup(unique("host"), display_name="Shop Keeper", roles=["creator"])
    studio, _ = await go_live(node, open_media_page, "Shop stream", creator=creator)
    await make_product(studio)
    shop = await open_page(f"{node.url}/shop.html?user={creator['id']}")
    await expect(shop.get_by_role("heading", name="Shop Keeper's shop")).to_be_visible()
    tile = shop.locator(".product-tile")
    await expect(tile).to_have_count(1)
    await expect(tile.get_by_role("heading")).to_have_text("Night Owl Tee")
    await expect(tile.locator(".product-meta")).to_have_text("T-shirt · S, M")
    await expect(tile.locator(".product-price")).to_have_text("$30.00")
    await image_drawn(shop, ".product-tile img")
    await expect(shop.get_by_role("link", name="Watch the stream now")).to_be_visible()
    missing = await open_page(f"{node.url}/shop.html?user=999999999")
    await expect(missing.locator("#page-banner")).to_have_text("There is no such creator.")


async def product_by_api(node: Any, creator: dict[str, Any]) -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field("file", design_png(), filename="owl.png", content_type="image/png")
    auth = {"Authorization": f"Bearer {creator['token']}"}
    async with node.http.post(f"{node.url}/api/designs", data=form, headers=auth) as response:
        design = await response.json()
    body = {"design_id": design["id"], "base_item_id": "tshirt", "title": "Night Owl Tee", "price_cents": 3000,
            "variant_ids": ["tshirt-s-black"]}
    async with node.http.post(f"{node.url}/api/products", json=body, headers=auth) as response:
        assert response.status == 201, await response.text()
        return await response.json()


async def test_a_viewer_who_reconnects_sees_what_happened_meanwhile(
    node: Any, open_page: OpenPage, open_watch: OpenWatch,
) -> None:
    """Bob's room socket drops and his page cannot reconnect while Alice bids and the creator pins; once it can, it
    resumes from the last event it saw and its panel and pinned card are Alice's."""
    creator = await node.signup(unique("host"), display_name="Studio Host", roles=["creator"])
    alice = await node.signup(unique("alice"), display_name="Alice Bidder")
    bob = await node.signup(unique("bob"), display_name="Bob Bidder")
    for fan in (alice, bob):
        async with node.http.post(f"{node.url}/api/payment-methods", json={"card_number": SUCCEEDING_CARD},
                                  headers={"Authorization": f"Bearer {fan['token']}"}) as saved:
            assert saved.status == 201
    stream = await node.create_stream(creator["token"], "Reconnecting")
    made = await product_by_api(node, creator)
    terms = {"product_id": made["id"], "variant_id": "tshirt-s-black", "start_cents": 2000, "duration_s": DURATION_S,
             "increments": "dollar"}
    async with node.http.post(f"{node.url}/api/streams/{stream['id']}/auctions", json=terms,
                              headers={"Authorization": f"Bearer {creator['token']}"}) as response:
        assert response.status == 201, await response.text()

    fan_a = await open_watch(stream["id"], token=alice["token"])
    # Bob's page talks to the room through a route the test can cut.
    fan_b = await open_page(f"{node.url}/", token=bob["token"])
    routes: list[WebSocketRoute] = []
    cut = asyncio.Event()

    async def room_socket(route: WebSocketRoute) -> None:
        routes.append(route)
        if cut.is_set():
            await route.close(code=1011, reason="cut by the test")
        else:
            route.connect_to_server()

    await fan_b.route_web_socket(re.compile(r"/ws/rooms/"), room_socket)
    await fan_b.goto(f"{node.url}/watch.html?room={stream['id']}")
    await expect(fan_b.locator("#conn-status")).to_have_attribute("data-state", "open")
    await fan_b.get_by_role("button", name="Bid $20.00").click()
    await expect_panel(fan_a, price="$20.00", who="Bob Bidder", label="Leader")

    cut.set()
    await routes[-1].close(code=1011, reason="cut by the test")
    await expect(fan_b.locator("#conn-status")).to_have_attribute("data-state", "reconnecting")
    await fan_a.get_by_label("Your maximum bid (USD)").fill("26")
    await fan_a.get_by_role("button", name="Bid up to this").click()
    await expect(fan_a.locator("#auction-standing")).to_have_text("You're the highest bidder.")
    async with node.http.post(f"{node.url}/api/streams/{stream['id']}/pin", json={"product_id": made["id"]},
                              headers={"Authorization": f"Bearer {creator['token']}"}) as response:
        assert response.status == 200
    await expect(fan_a.locator("#pinned-product")).to_be_visible()
    await expect(fan_b.locator("#auction-leader")).to_have_text("Bob Bidder")  # nothing reached Bob meanwhile

    cut.clear()
    await expect(fan_b.locator("#conn-status")).to_have_attribute("data-state", "open")
    assert "since=" in routes[-1].url  # a resume, not a fresh join
    await expect(fan_b.locator("#auction-standing")).to_have_text("You've been outbid. Bid again to win it back.")
    for part in ("#auction-price", "#auction-leader", "#auction-bids li", "#pinned-title"):
        await expect(fan_b.locator(part)).to_have_text(await fan_a.locator(part).all_inner_texts())
