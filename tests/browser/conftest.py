"""Browser fixtures: one headless Debian Chromium per test session, a fresh context (cookie jar) per user, and a
second Chromium with a fake camera for the studio.

CI sets `CI`; there a missing Chromium fails the run instead of skipping, so the browser tests cannot silently
stop running.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from browsing import OpenMediaPage, OpenPage, OpenWatch
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from podsim import PodSim
from programs import require_program

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FAKE_MEDIA_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                   "--autoplay-policy=no-user-gesture-required"]
SESSION_COOKIE = "livecore_session"
# Long enough for a cold embedded server on a slow CI machine, short enough that a broken page fails quickly.
ACTION_TIMEOUT_MS = 15_000
expect.set_options(timeout=ACTION_TIMEOUT_MS)

# The print-on-demand simulator's pace for pages that watch orders move: its six simulated days from payment to
# delivery pass in about five seconds, so a page sees each step without the test moving any clock.
FULFILMENT_TIME_ACCELERATION = 100_000



@pytest.fixture
def podsim(tmp_path: Path, http: aiohttp.ClientSession) -> Iterator[PodSim]:
    """The print-on-demand simulator as a child process, on its own clock sped up FULFILMENT_TIME_ACCELERATION
    times; a node gets it with `fulfilment_url=podsim.url, fulfilment_webhook_secret=podsim.secret`."""
    sim = PodSim(tmp_path / "podsim", http, time_acceleration=FULFILMENT_TIME_ACCELERATION)
    sim.directory.mkdir()
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def _require_chromium() -> None:
    require_program(CHROMIUM, "chromium", "browser tests")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium from Debian's package; Playwright's own browser downloads are never used."""
    _require_chromium()
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        yield chromium
        await chromium.close()


@contextlib.asynccontextmanager
async def page_opener(browser: Browser) -> AsyncIterator[OpenPage]:
    """`await open_new(url, token=None, before=None, wait_until="load")` opens a page in a new context (cookie jar),
    logged in when given a session token, calling `before(page)` before it loads; the contexts close on exit, and
    uncaught JavaScript errors on any page fail the test."""
    contexts: list[BrowserContext] = []
    page_errors: list[str] = []

    async def open_new(url: str, *, token: str | None = None, before: Callable[[Page], None] | None = None,
                       wait_until: str = "load") -> Page:
        context = await browser.new_context(viewport={"width": 1280, "height": 800})
        contexts.append(context)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        if token is not None:
            await context.add_cookies([{"name": SESSION_COOKIE, "value": token, "url": url}])
        page = await context.new_page()
        page.on("pageerror", lambda error: page_errors.append(f"{page.url}: {error}"))
        if before is not None:  # e.g. listeners that must hear the page's first requests
            before(page)
        await page.goto(url, wait_until=wait_until)  # type: ignore[arg-type]
        return page

    yield open_new
    for context in contexts:
        await context.close()
    assert not page_errors, f"uncaught JavaScript errors: {page_errors}"


@pytest_asyncio.fixture(loop_scope="session")
async def open_page(browser: Browser) -> AsyncIterator[OpenPage]:
    """`await open_page(url, token=None)`: a page in a new context, logged in when given a session token."""
    async with page_opener(browser) as open_new:
        yield open_new


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def media_browser() -> AsyncIterator[Browser]:
    """A second Chromium whose camera and microphone are Chromium's generated test pattern and beep."""
    _require_chromium()
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                                    args=[*LAUNCH_ARGS, *FAKE_MEDIA_ARGS])
        yield chromium
        await chromium.close()


@pytest_asyncio.fixture(loop_scope="session")
async def open_media_page(media_browser: Browser) -> AsyncIterator[OpenMediaPage]:
    """`await open_media_page(url, token=None)`: like `open_page`, in the Chromium with the fake camera."""
    async with page_opener(media_browser) as open_new:
        yield open_new


@pytest_asyncio.fixture(loop_scope="session")
async def open_watch(node: Any, open_page: OpenPage) -> OpenWatch:
    """`await open_watch(room_id, token=None)`: a room's watch page, connected, its snapshot applied."""

    async def open_room(room_id: int | str, *, token: str | None = None) -> Page:
        page = await open_page(f"{node.url}/watch.html?room={room_id}", token=token)
        await expect(page.locator("#conn-status")).to_have_attribute("data-state", "open")
        await expect(page.locator("#stream-state")).not_to_have_attribute("data-state", "")
        if token is not None:
            await expect(page.locator("#chat-input")).to_be_enabled()
        return page

    return open_room
