"""Take the README's screenshots of the main pages on a running demo node: `make screenshots`.

With no `--url` it starts its own `livecore serve --demo` on a free port and a throw-away data dir, waits until the
demo is live (video, chat and a gift on the watch page), has the demo creator make a product and the demo viewer
order and pay for it (for the orders and sales pages), photographs the pages with Debian's Chromium through
Playwright, and stops the node. The pictures land in docs/ as PNG.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
from PIL import Image, ImageDraw
from playwright.async_api import Browser, Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

from commerce.providers import SUCCEEDING_CARD
from livecore.embedded import free_port
from livecore.seed import DEMO_CREATOR, DEMO_VIEWER

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--use-fake-device-for-media-stream",
               "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required"]
VIEWPORT = {"width": 1280, "height": 800}
READY_S_MAX = 120.0
DEMO_LIVE_S_MAX = 60.0
PAGE_WAIT_MS_MAX = 30_000
THUMBNAIL_S_MAX = 30.0
# The embedded simulator ships an order about 50 s after it is paid; the orders page is shown as it is after this.
ORDER_SHIPPED_WAIT_MS = 120_000
SHIP_TO = {"name": "Demo Viewer", "line1": "1 Main St", "city": "Beverly Hills", "subdivision": "CA",
           "postcode": "90210", "country": "US"}
OUT_DIR = Path(__file__).resolve().parent


def step(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


@contextlib.contextmanager
def demo_node(url: str | None) -> Iterator[str]:
    """The node to photograph: `url` as given, or a `livecore serve --demo` of our own for the duration."""
    if url:
        yield url.rstrip("/")
        return
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="livecore-screens-") as data_dir:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVECORE_")}
        log_path = Path(data_dir) / "serve.log"
        with open(log_path, "wb") as log:
            step(f"starting livecore serve --demo on port {port} (log: {log_path})")
            process = subprocess.Popen(
                [sys.executable, "-m", "livecore", "serve", "--demo", "--port", str(port), "--data-dir",
                 str(Path(data_dir) / "data")], env=env, stdout=log, stderr=subprocess.STDOUT,
            )
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                if process.returncode not in (0, -signal.SIGINT):
                    print(log_path.read_text()[-4000:], file=sys.stderr)


async def wait_for_demo(http: aiohttp.ClientSession, base: str) -> int:
    """Wait until the node is ready and the demo creator is live; the demo stream's id."""
    deadline = time.monotonic() + READY_S_MAX
    while True:
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{base}/api/live") as response:
                if response.status == 200:
                    for stream in (await response.json())["streams"]:
                        if stream["creator"]["username"] == DEMO_CREATOR.username:
                            return int(stream["id"])
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: the demo did not go live on {base} within {READY_S_MAX:.0f} s")
        await asyncio.sleep(0.5)


async def log_in(http: aiohttp.ClientSession, base: str, username: str, password: str) -> str:
    async with http.post(f"{base}/api/sessions", json={"username": username, "password": password}) as response:
        if response.status != 200:
            raise SystemExit(f"screenshots: cannot log in as {username}: {await response.text()}")
        return (await response.json())["token"]


async def buy_coins(http: aiohttp.ClientSession, base: str, token: str) -> None:
    """Buy a coin package as a viewer would, with the local provider's test card, so the wallet has a history."""
    headers = {"Authorization": f"Bearer {token}"}
    body = {"package_id": "coins_500", "idempotency_key": f"screenshots-{time.time_ns()}"}
    async with http.post(f"{base}/api/coins/purchases", json=body, headers=headers) as response:
        if response.status != 201:
            step(f"could not start a coin purchase ({response.status}); the wallet is shown as it is")
            return
        purchase = await response.json()
    async with http.post(f"{base}/api/payments/local/{purchase['id']}/confirm", headers=headers,
                         json={"card_number": SUCCEEDING_CARD}) as response:
        if response.status != 200:
            step(f"the test card was refused ({response.status}); the wallet is shown as it is")


def design_png() -> bytes:
    image = Image.new("RGBA", (480, 480), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse([60, 60, 420, 420], fill=(255, 59, 92, 255))
    draw.rectangle([180, 180, 300, 300], fill=(255, 204, 77, 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


async def order_merch(http: aiohttp.ClientSession, base: str, creator: str, viewer: str) -> bool:
    """The demo creator makes a t-shirt of a design; the demo viewer orders one and pays with the test card."""
    as_creator, as_viewer = {"Authorization": f"Bearer {creator}"}, {"Authorization": f"Bearer {viewer}"}
    form = aiohttp.FormData()
    form.add_field("file", design_png(), filename="demo.png", content_type="image/png")
    async with http.post(f"{base}/api/designs", data=form, headers=as_creator) as response:
        design = await response.json()
    body = {"design_id": design["id"], "base_item_id": "tshirt", "title": "Demo Tee", "price_cents": 2500,
            "variant_ids": ["tshirt-m-black"], "idempotency_key": "screenshots-product"}
    async with http.post(f"{base}/api/products", json=body, headers=as_creator) as response:
        product = await response.json()
    body = {"items": [{"product_id": product["id"], "variant_id": "tshirt-m-black", "quantity": 1}],
            "shipping_address": SHIP_TO, "idempotency_key": f"screenshots-{time.time_ns()}"}
    async with http.post(f"{base}/api/orders", json=body, headers=as_viewer) as response:
        if response.status != 201:
            step(f"could not order the demo product ({response.status}); the orders page is shown as it is")
            return False
        order = await response.json()
    await http.put(f"{base}/api/shipping-address", json=SHIP_TO, headers=as_viewer)
    async with http.post(f"{base}/api/payments/local/orders/{order['id']}/confirm", headers=as_viewer,
                         json={"card_number": SUCCEEDING_CARD}) as response:
        return response.status == 200


async def open_as(browser: Browser, url: str, token: str | None) -> Page:
    context = await browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(PAGE_WAIT_MS_MAX)
    if token:
        await context.add_cookies([{"name": "livecore_session", "value": token, "url": url}])
    page = await context.new_page()
    await page.goto(url)
    return page


async def wait_for_thumbnail(page: Page) -> None:
    """The directory card's picture comes with the stream's first thumbnail: reload until it is there."""
    deadline = time.monotonic() + THUMBNAIL_S_MAX
    while not await page.evaluate("() => [...document.querySelectorAll('#live-list img')]"
                                  ".some((img) => img.complete && img.naturalWidth > 0)"):
        if time.monotonic() > deadline:
            step("no thumbnail yet; the directory is shown without one")
            return
        await asyncio.sleep(1)
        await page.reload()
        await page.locator("#live-list li").first.wait_for()


async def shoot(page: Page, name: str, out_dir: Path) -> None:
    path = out_dir / f"{name}.png"
    await page.screenshot(path=str(path))
    step(f"wrote {path}")
    await page.context.close()


async def take(base: str, out_dir: Path) -> None:
    async with aiohttp.ClientSession() as http:
        step(f"waiting for the demo to go live on {base}")
        room = await wait_for_demo(http, base)
        viewer = await log_in(http, base, DEMO_VIEWER.username, DEMO_VIEWER.password)
        creator = await log_in(http, base, DEMO_CREATOR.username, DEMO_CREATOR.password)
        await buy_coins(http, base, viewer)
        ordered = await order_merch(http, base, creator, viewer)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        page = await open_as(browser, f"{base}/", viewer)
        await page.locator("#live-list li").first.wait_for()
        await wait_for_thumbnail(page)
        await shoot(page, "directory", out_dir)

        page = await open_as(browser, f"{base}/watch.html?room={room}", viewer)
        step("watch page: waiting for moving video, a chat line and a gift")
        await page.wait_for_function("() => { const v = document.querySelector('#video');"
                                     " return v && v.readyState >= 2 && v.currentTime > 1; }")
        await page.locator("#chat-list li").first.wait_for()
        await page.locator("#gift-feed li").first.wait_for()
        await shoot(page, "watch", out_dir)

        page = await open_as(browser, f"{base}/studio.html", creator)
        await page.wait_for_load_state("networkidle")
        await shoot(page, "studio", out_dir)

        page = await open_as(browser, f"{base}/wallet.html", viewer)
        await page.wait_for_load_state("networkidle")
        await shoot(page, "wallet", out_dir)

        page = await open_as(browser, f"{base}/orders.html", viewer)
        if ordered:
            step("orders page: waiting for the simulator to ship the order")
            with contextlib.suppress(PlaywrightTimeout):
                await page.locator(".order[data-state='shipped']").wait_for(timeout=ORDER_SHIPPED_WAIT_MS)
        await shoot(page, "orders", out_dir)

        page = await open_as(browser, f"{base}/sales.html", creator)
        await page.wait_for_load_state("networkidle")
        await shoot(page, "sales", out_dir)
        await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Screenshot the live directory, a watch page (video, chat, a gift), the studio, the wallet, an "
        "order's tracking and the creator's sales on a demo node, as PNG files for the README. Needs Chromium at "
        "/usr/bin/chromium.")
    parser.add_argument("--url", help="photograph this running node (with the demo on) instead of starting one")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where the PNG files go (default: docs/)")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"screenshots: {CHROMIUM} is missing (apt-get install chromium)")

    with demo_node(args.url) as base:
        asyncio.run(take(base, args.out))


if __name__ == "__main__":
    main()
