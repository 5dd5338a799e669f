"""What the browser tests share besides fixtures: the page openers' types, going live from the studio, frames a
page's player decoded, unique names and chat as a user types it. (Tests import these from here, not from
conftest.py: another folder's conftest module can stand in for this one when folders are collected together.)"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from playwright.async_api import Page, expect

# How long a page may take to show an order reaching a state that the simulator's own clock brings.
ORDER_STEP_TIMEOUT_MS = 60_000

OpenPage = Callable[..., Awaitable[Page]]
OpenWatch = Callable[..., Awaitable[Page]]
OpenMediaPage = Callable[..., Awaitable[Page]]


async def go_live(node: Any, open_media_page: OpenMediaPage, title: str,
                  creator: dict[str, Any] | None = None) -> tuple[Page, str]:
    """Go live from the studio page with the fake camera (as `creator`, else a new creator): the page, connected to
    its room, and the stream's id."""
    creator = creator or await node.signup(roles=["creator"])
    studio = await open_media_page(f"{node.url}/studio.html", token=creator["token"])
    await studio.locator("#stream-title-input").fill(title)
    await expect(studio.locator("#go-live")).to_be_enabled()
    await studio.locator("#go-live").click()
    await expect(studio.locator("#publish-state")).to_have_attribute("data-state", "live")
    await expect(studio.locator("#conn-status")).to_have_attribute("data-state", "open")
    href = await studio.locator("#watch-link").get_attribute("href")
    assert href and href.startswith("/watch.html?room=")
    return studio, href.split("=", 1)[1]


FRAMES_DECODED = """() => {
  const pc = window.livecorePlayer && window.livecorePlayer.pc;
  if (!pc) return 0;
  return pc.getStats().then((stats) => {
    let frames = 0;
    stats.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0; });
    return frames;
  });
}"""


async def frames_decoded(page: Page) -> int:
    return int(await page.evaluate(FRAMES_DECODED))


async def wait_for_frames(page: Page, at_least: int, timeout_s: float = 20) -> int:
    deadline = time.monotonic() + timeout_s
    while (frames := await frames_decoded(page)) < at_least:
        assert time.monotonic() < deadline, f"only {frames} video frames decoded"
        await asyncio.sleep(0.25)
    return frames


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


async def say(page: Page, text: str) -> None:
    """Type a chat message and send it with Enter, as a user would."""
    await page.locator("#chat-input").fill(text)
    await page.locator("#chat-input").press("Enter")
    await expect(page.locator("#chat-input")).to_have_value("")
