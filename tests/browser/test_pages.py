"""The live directory and the log-in page: session display, problem details, safe redirects."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from browsing import unique
from playwright.async_api import Page, expect

pytestmark = pytest.mark.browser

OpenPage = Callable[..., Awaitable[Page]]  # the `open_page` fixture of conftest.py


async def test_directory_lists_a_live_stream_and_links_to_its_room(node: Any, open_page: OpenPage) -> None:
    creator = await node.signup(unique("host"))
    title = f"Directory check {secrets.token_hex(3)}"
    stream = await node.create_stream(creator["token"], title)
    page = await open_page(f"{node.url}/")
    await expect(page.locator("#login-link")).to_be_visible()
    card = page.locator(f'#live-list li[data-id="{stream["id"]}"]')
    await expect(card.locator(".title")).to_have_text(title)
    await card.locator("a").click()
    await expect(page).to_have_url(f"{node.url}/watch.html?room={stream['id']}")
    await expect(page.locator("#stream-title")).to_have_text(title)


async def test_login_shows_the_servers_problem_detail(node: Any, open_page: OpenPage) -> None:
    username = unique("vic")
    await node.signup(username)
    async with aiohttp.ClientSession() as http:
        wrong = {"username": username, "password": "nope"}
        async with http.post(f"{node.url}/api/sessions", json=wrong) as response:
            assert response.status == 401
            detail = (await response.json())["detail"]
    page = await open_page(f"{node.url}/login.html")
    await page.locator("#login-username").fill(username)
    await page.locator("#login-password").fill("nope")
    await page.locator("#login-submit").click()
    await expect(page.locator("#login-error")).to_have_text(detail)
    await expect(page).to_have_url(f"{node.url}/login.html")


async def test_signup_refusal_marks_the_field(node: Any, open_page: OpenPage) -> None:
    taken = unique("taken")
    await node.signup(taken)
    page = await open_page(f"{node.url}/login.html")
    await page.locator("#signup-username").fill(taken)
    await page.locator("#signup-password").fill("long-enough-password")
    await page.locator("#signup-birth-date").fill("1995-05-05")
    await page.locator("#signup-region").fill("FR")
    await page.locator("#signup-submit").click()
    await expect(page.locator("#signup-error")).to_contain_text(taken)
    await expect(page.locator("#signup-submit")).to_be_enabled()


async def test_signup_never_redirects_off_site(node: Any, open_page: OpenPage) -> None:
    username = unique("eve")
    page = await open_page(f"{node.url}/login.html?next=//evil.example/steal")
    await page.locator("#signup-username").fill(username)
    await page.locator("#signup-password").fill("long-enough-password")
    await page.locator("#signup-birth-date").fill("1995-05-05")
    await page.locator("#signup-region").fill("FR")
    await page.locator("#signup-submit").click()
    await expect(page).to_have_url(f"{node.url}/")
    await expect(page.locator("#session-user")).to_contain_text(username)


async def test_logout_ends_the_session(node: Any, open_page: OpenPage) -> None:
    account = await node.signup(unique("lou"))
    page = await open_page(f"{node.url}/", token=account["token"])
    await expect(page.locator("#session-user")).to_contain_text(account["username"])
    await page.locator("#logout").click()
    await expect(page.locator("#login-link")).to_be_visible()
