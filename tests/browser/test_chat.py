"""Chat on the watch page, end to end: real node, real browsers, one context (cookie jar) per user."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import pytest
from browsing import say, unique
from playwright.async_api import Page, expect

pytestmark = pytest.mark.browser

OpenPage = Callable[..., Awaitable[Page]]  # the `open_page` and `open_watch` fixtures of conftest.py
OpenWatch = Callable[..., Awaitable[Page]]

XSS = "<img src=x onerror=alert(1)>"




async def sign_up_through_the_page(page: Page, username: str) -> None:
    await page.locator("#signup-username").fill(username)
    await page.locator("#signup-password").fill("correct-horse-battery")
    await page.locator("#signup-birth-date").fill("1990-01-01")
    await page.locator("#signup-region").fill("de")
    await page.locator("#signup-submit").click()


async def test_two_viewers_see_each_others_messages(
    node: Any, open_page: OpenPage, open_watch: OpenWatch
) -> None:
    creator = await node.signup(unique("host"))
    stream = await node.create_stream(creator["token"], "Chat between two viewers")
    room_path = f"/watch.html?room={stream['id']}"

    ann_name = unique("ann")
    ann = await open_page(f"{node.url}/login.html?next={quote(room_path)}")
    await sign_up_through_the_page(ann, ann_name)
    await expect(ann).to_have_url(f"{node.url}{room_path}")
    await expect(ann.locator("#chat-input")).to_be_enabled()

    bob_name = unique("bob")
    bob_account = await node.signup(bob_name)
    bob = await open_watch(stream["id"], token=bob_account["token"])

    await say(ann, "hello from ann")
    await expect(bob.locator("#chat-list li[data-id] .text")).to_have_text(["hello from ann"])
    await say(bob, "hi ann, bob here")

    for page in (ann, bob):
        lines = page.locator("#chat-list li[data-id]")
        await expect(lines.locator(".text")).to_have_text(["hello from ann", "hi ann, bob here"])
        await expect(lines.locator(".author")).to_have_text([ann_name, bob_name])


async def test_chat_markup_is_shown_as_literal_text(node: Any, open_watch: OpenWatch) -> None:
    creator = await node.signup(unique("host"))
    stream = await node.create_stream(creator["token"], "Markup in chat")
    sender_account = await node.signup(unique("mallory"))
    sender = await open_watch(stream["id"], token=sender_account["token"])
    receiver = await open_watch(stream["id"], token=creator["token"])
    dialogs: list[str] = []
    for page in (sender, receiver):
        page.on("dialog", lambda dialog: dialogs.append(dialog.message))

    await say(sender, XSS)
    # A late joiner renders the message from the join snapshot, the other two from the live event.
    late = await open_watch(stream["id"])
    late.on("dialog", lambda dialog: dialogs.append(dialog.message))

    for page in (sender, receiver, late):
        await expect(page.locator("#chat-list li[data-id] .text")).to_have_text([XSS])
        await expect(page.locator("#chat-list img")).to_have_count(0)
    assert dialogs == []
