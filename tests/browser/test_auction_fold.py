"""The pages' pure auction module (webui/static/js/auction.js), run in Chromium: its fold of a room's real auction
events, in any order and with repeats, ends where the database is; its server clock, countdown and next-bid maths
agree with the server's rules."""

from __future__ import annotations

import asyncio
import io
import json
import random
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from browsing import unique
from PIL import Image
from playwright.async_api import Browser, Page, Route
from roomclient import events_until

from commerce import COMMERCE
from commerce.auctions import auctions, increments
from commerce.providers import SUCCEEDING_CARD
from livecore.clock import ManualClock

pytestmark = pytest.mark.browser

STATIC = Path(__file__).resolve().parents[2] / "webui" / "static"
ORIGIN = "http://livecore.test"
SHUFFLES = 25
CHANGING = ("version", "state", "price_cents", "leader", "ends_at", "bids_count", "min_next_cents",
            "buy_now_available", "winner", "closed_by")


async def _serve(route: Route) -> None:
    path = route.request.url.removeprefix(ORIGIN)
    file = (STATIC / path.lstrip("/")).resolve()
    if path == "/":
        await route.fulfill(body="<!doctype html><title>auction.js</title>", content_type="text/html")
    elif file.suffix == ".js" and file.is_file() and STATIC in file.parents:
        await route.fulfill(body=file.read_bytes(), content_type="text/javascript")
    else:
        await route.fulfill(status=404, body="not found")


@pytest_asyncio.fixture(loop_scope="session")
async def module(browser: Browser) -> AsyncIterator[Page]:
    """A blank page with auction.js imported as `window.A`."""
    context = await browser.new_context()
    page = await context.new_page()
    await page.route(f"{ORIGIN}/**", _serve)
    await page.goto(f"{ORIGIN}/")
    await page.evaluate("async () => { window.A = await import('/js/auction.js'); }")
    yield page
    await context.close()


@pytest.fixture
async def node(node_factory: Any) -> Any:
    """A manual clock: the auctions end only when a buyer buys them now."""
    return await node_factory(clock=ManualClock(), auction_sweep_ms=3_600_000)


async def call(node: Any, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    async with node.http.request(method, node.url + path, json=body,
                                 headers={"Authorization": f"Bearer {token}"}) as response:
        return response.status, await response.json(content_type=None)


async def product(node: Any, seller: dict[str, Any]) -> dict[str, Any]:
    picture = io.BytesIO()
    Image.new("RGB", (200, 200), (200, 40, 90)).save(picture, "PNG")
    form = aiohttp.FormData()
    form.add_field("file", picture.getvalue(), filename="d.png", content_type="image/png")
    async with node.http.post(f"{node.url}/api/designs", data=form,
                              headers={"Authorization": f"Bearer {seller['token']}"}) as response:
        design = await response.json()
    status, made = await call(node, "POST", "/api/products", seller["token"], {
        "design_id": design["id"], "base_item_id": "mug", "title": "Fold mug", "price_cents": 2500})
    assert status == 201, made
    return made


async def run_auction(node: Any, seller: dict[str, Any], stream_id: int, made: dict[str, Any],
                      bidders: list[dict[str, Any]], rng: random.Random) -> int:
    """Open an auction, let the bidders race with plain and proxy bids, then one buys it now; its id."""
    status, opened = await call(node, "POST", f"/api/streams/{stream_id}/auctions", seller["token"], {
        "product_id": made["id"], "variant_id": made["variants"][0]["id"], "start_cents": 2000, "duration_s": 600,
        "increments": "whatnot", "buy_now_cents": 9000})
    assert status == 201, opened
    path = f"/api/auctions/{opened['id']}"
    for _ in range(4):
        _, view = await call(node, "GET", path, seller["token"])
        offers = []
        for bidder in bidders:
            body = {"amount_cents": view["min_next_cents"], "idempotency_key": secrets.token_hex(8)}
            if rng.random() < 0.4:
                body["max_cents"] = view["min_next_cents"] + rng.randrange(100, 1500)
            offers.append(call(node, "POST", f"{path}/bids", bidder["token"], body))
        answers = await asyncio.gather(*offers)
        assert any(status == 200 for status, _ in answers), answers
    status, bought = await call(node, "POST", f"{path}/buy-now", bidders[0]["token"],
                                {"idempotency_key": secrets.token_hex(8)})
    assert status == 200 and bought["outcome"] == "bought", bought
    return opened["id"]


async def test_the_fold_of_real_events_in_any_order_is_the_databases_auction(node: Any, module: Page) -> None:
    rng = random.Random(20261201)
    seller = await node.signup(unique("seller"), roles=["creator"])
    stream = await node.create_stream(seller["token"], "Fold")
    made = await product(node, seller)
    bidders = [await node.signup(unique("bidder")) for _ in range(3)]
    for bidder in bidders:
        status, _ = await call(node, "POST", "/api/payment-methods", bidder["token"], {"card_number": SUCCEEDING_CARD})
        assert status == 201
    socket = await node.ws(stream["id"])
    heard = await events_until(socket, lambda got: any(e["type"] == "snapshot" for e in got))
    first = await run_auction(node, seller, stream["id"], made, bidders, rng)
    second = await run_auction(node, seller, stream["id"], made, bidders, rng)
    heard += await events_until(socket, lambda got: any(
        e["type"] == "auction" and e["auction_id"] == second and e["action"] == "won" for e in got))
    auction_events = [e for e in heard if e["type"] == "auction"]
    assert {e["auction_id"] for e in auction_events} == {first, second}
    view = await auctions.auction_view(node.app[COMMERCE].auctions, second)
    late = await node.ws(stream["id"])
    snapshot = next(e for e in await events_until(late, lambda got: bool(got)) if e["type"] == "snapshot")

    orders = []
    for _ in range(SHUFFLES):
        shuffled = auction_events + rng.sample(auction_events, len(auction_events) // 2)  # with repeats
        rng.shuffle(shuffled)
        orders.append(shuffled)
    folded = await module.evaluate(
        """([orders, snapshot]) => {
            const show = (lot) => ({ id: lot.id, state: lot.state, bids: A.history(lot),
                                     terms: lot.terms && { id: lot.terms.id, start_cents: lot.terms.start_cents,
                                       increments: lot.terms.increments, buy_now_cents: lot.terms.buy_now_cents } });
            const fromEvents = orders.map((events) => show(events.reduce((lot, e) => A.foldLot(lot, e), null)));
            return { fromEvents, fromSnapshot: show(A.foldLot(null, snapshot.auction)) };
        }""", [orders, snapshot])

    expected = {"id": second, "state": {k: view[k] for k in CHANGING}, "bids": view["bids"][-50:],
                "terms": {"id": second, "start_cents": view["start_cents"], "increments": view["increments"],
                          "buy_now_cents": view["buy_now_cents"]}}
    assert len(view["bids"]) > 4 and view["state"] == "closed" and view["closed_by"] == "buy_now"
    for result in folded["fromEvents"]:
        assert result == expected
    assert folded["fromSnapshot"] == expected


async def test_the_server_clock_keeps_the_least_delayed_recent_sample(module: Page) -> None:
    estimates = await module.evaluate(
        """() => {
            let local = 1000;
            const clock = new A.ServerClock(() => local);
            const seen = [clock.now()];
            clock.sample(5_000_000);             // arrives at local 1000: offset 4_999_000
            local = 1500; clock.sample(5_000_300); // 200 ms late: offset 4_998_800, not better
            seen.push(clock.now());
            local = 2000; clock.sample(4_000_000); // a replayed event's old ts never drags the clock back
            seen.push(clock.now());
            local = 3000; clock.sample(5_002_400, 2800); // a round trip: its midpoint 2900, offset 4_999_500
            seen.push(clock.now());
            local = 3000 + A.CLOCK_SAMPLE_AGE_MS_MAX + 1; clock.sample(4_800_000); // the server clock was stepped
            seen.push(clock.now() - local);
            return seen;
        }""")
    assert estimates == [None, 1500 + 4_999_000, 2000 + 4_999_000, 3000 + 4_999_500, 4_800_000 - 3000 - 60_001]


async def test_countdown_text_and_announcements(module: Page) -> None:
    texts = await module.evaluate(
        """() => [61_000, 60_000, 59_001, 9_999, 1, 0, 3_600_000, 3_725_000].map(A.formatRemaining)""")
    assert texts == ["1:01", "1:00", "1:00", "0:10", "0:01", "0:00", "1:00:00", "1:02:05"]
    crossings = await module.evaluate(
        """() => [[65_000, 59_500], [31_000, 9_000], [9_000, 8_000], [1_000, 0], [null, 5_000], [301_000, 300_000]]
            .map(([before, after]) => A.thresholdCrossed(before, after))""")
    # 60 s passed; 30 and 10 both passed while the page slept (the nearer one is said); nothing; the end is said
    # by the result, not as "0 seconds"; no earlier reading; exactly 300 s is "5 minutes left".
    assert crossings == [60, 10, None, None, None, 300]
    remaining = await module.evaluate(
        """() => { const lot = { state: { ends_at: 10_000 } };
                   return [A.remainingMs(lot, 4_000), A.remainingMs(lot, 12_000), A.remainingMs(lot, null)]; }""")
    assert remaining == [6_000, 0, None]


@pytest.mark.parametrize("preset", sorted(increments.presets()))
async def test_next_bids_follow_the_increment_table(module: Page, preset: str) -> None:
    table = increments.presets()[preset]
    for minimum in (0, 95, 4_900, 9_950, 99_000):
        expected = [minimum]
        while len(expected) < 4:
            expected.append(expected[-1] + table.step(expected[-1]))
        lot = {"state": {"state": "open", "min_next_cents": minimum}, "terms": {"increments": table.public()}}
        assert await module.evaluate(f"() => A.nextBids({json.dumps(lot)}, 4)") == expected, (preset, minimum)
    closed = {"state": {"state": "closed", "min_next_cents": 100}, "terms": {"increments": table.public()}}
    assert await module.evaluate(f"() => A.nextBids({json.dumps(closed)})") == []
