"""The watch page's live room beyond chat: likes, viewer counts, moderation and guests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from browsing import say, unique
from playwright.async_api import Page, expect

pytestmark = pytest.mark.browser

OpenWatch = Callable[..., Awaitable[Page]]  # the `open_watch` fixture of conftest.py




async def room_with_creator(node: Any, title: str) -> tuple[dict[str, Any], dict[str, Any]]:
    creator = await node.signup(unique("host"))
    return creator, await node.create_stream(creator["token"], title)


async def test_likes_and_viewers_reach_every_viewer(node: Any, open_watch: OpenWatch) -> None:
    creator, stream = await room_with_creator(node, "Likes")
    fan = await open_watch(stream["id"], token=(await node.signup(unique("fan")))["token"])
    host = await open_watch(stream["id"], token=creator["token"])
    for _ in range(7):
        await fan.locator("#like-button").click()
    await expect(fan.locator("#like-total")).to_have_text("7")
    await expect(host.locator("#like-total")).to_have_text("7")
    for page in (fan, host):
        await expect(page.locator("#viewer-count")).to_have_text("2")


async def test_creator_deletes_a_message_for_everyone(node: Any, open_watch: OpenWatch) -> None:
    creator, stream = await room_with_creator(node, "Deleting")
    viewer = await open_watch(stream["id"], token=(await node.signup(unique("troll")))["token"])
    host = await open_watch(stream["id"], token=creator["token"])
    await expect(host.locator("#mod-tools")).to_be_visible()
    await expect(viewer.locator("#mod-tools")).to_be_hidden()
    await say(viewer, "something rude")
    host_line = host.locator("#chat-list li[data-id]", has_text="something rude")
    await expect(viewer.locator("#chat-list li[data-id]", has_text="something rude")).to_have_count(1)
    await expect(viewer.locator("#chat-list .mod-actions")).to_have_count(0)
    await host_line.get_by_role("button", name="Delete message").click()
    for page in (viewer, host):
        await expect(page.locator("#chat-list li[data-id]")).to_have_count(0)


async def test_banned_viewer_is_told_and_stays_out(node: Any, open_watch: OpenWatch) -> None:
    creator, stream = await room_with_creator(node, "Banning")
    account = await node.signup(unique("spam"))
    viewer = await open_watch(stream["id"], token=account["token"])
    host = await open_watch(stream["id"], token=creator["token"])
    await say(viewer, "buy followers now")
    line = host.locator("#chat-list li[data-id]", has_text="buy followers")
    await line.get_by_role("button", name="Ban").click()
    await expect(viewer.locator("#page-banner")).to_have_text("You are banned from this room")
    await expect(viewer.locator("#chat-input")).to_be_disabled()
    await expect(viewer.locator("#conn-status")).to_have_attribute("data-state", "banned")
    await viewer.reload()
    await expect(viewer.locator("#page-banner")).to_have_text("You are banned from this room")


async def test_slow_mode_is_announced(node: Any, open_watch: OpenWatch) -> None:
    creator, stream = await room_with_creator(node, "Slow mode")
    viewer = await open_watch(stream["id"], token=(await node.signup(unique("slow")))["token"])
    host = await open_watch(stream["id"], token=creator["token"])
    await host.locator("#slow-mode").select_option("30")
    await expect(viewer.locator("#chat-notice")).to_contain_text("30 s")
    await say(viewer, "first")
    await say(viewer, "second, too soon")
    await expect(viewer.locator("#chat-list li.system.error")).to_contain_text("slow mode")


async def test_guest_can_watch_but_not_chat(node: Any, open_watch: OpenWatch) -> None:
    creator, stream = await room_with_creator(node, "Guests")
    host = await open_watch(stream["id"], token=creator["token"])
    await say(host, "welcome, guests")
    guest = await open_watch(stream["id"])
    await expect(guest.locator("#chat-list li[data-id] .text")).to_have_text(["welcome, guests"])
    await expect(guest.locator("#chat-input")).to_be_disabled()
    await expect(guest.locator("#like-button")).to_be_disabled()
    await expect(guest.locator("#chat-notice").get_by_role("link", name="Log in to chat")).to_be_visible()


async def test_timed_out_viewer_cannot_chat(node: Any, open_watch: OpenWatch) -> None:
    creator, stream = await room_with_creator(node, "Timeouts")
    viewer = await open_watch(stream["id"], token=(await node.signup(unique("loud")))["token"])
    host = await open_watch(stream["id"], token=creator["token"])
    await say(viewer, "CAPS LOCK IS CRUISE CONTROL")
    line = host.locator("#chat-list li[data-id]", has_text="CAPS LOCK")
    await line.get_by_role("button", name="Time out").click()
    await expect(viewer.locator("#chat-list li.system.error")).to_contain_text("timed you out")
    await expect(viewer.locator("#chat-input")).to_be_disabled()
    await expect(host.locator("#chat-list li.system")).to_contain_text("was timed out")
