"""Every page, opened as someone who just arrived (logged out, and with a new account) and without the query a link
would give it: none asks the server for something it refuses (a 4xx or 5xx, which the browser logs as an error),
logs a console error or throws, and each has a heading or says in its banner what is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from browsing import unique
from playwright.async_api import Page

pytestmark = pytest.mark.browser

TEMPLATES = Path(__file__).resolve().parents[2] / "webui" / "templates"
PAGES = sorted(p.name for p in TEMPLATES.glob("*.html") if p.name != "layout.html")


def _other_tests_media(url: str) -> bool:
    """A video's file or picture: the feed shows other tests' videos from the shared database, whose files were on
    their own nodes' disks (gone, or another node's: 404 or 503 here)."""
    return urlparse(url).path.startswith("/videos/")


async def _problems_of(open_page: Any, url: str, token: str | None) -> list[str]:
    problems: list[str] = []

    def listen(page: Page) -> None:
        page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
                if r.status >= 400 and not _other_tests_media(r.url) else None)
        page.on("console", lambda m: problems.append(f"console: {m.text}")
                if m.type == "error" and not _other_tests_media(m.location.get("url", "")) else None)

    page = await open_page(url, token=token, before=listen, wait_until="networkidle")
    banner = page.locator("#page-banner")
    explained = await banner.count() and await banner.is_visible() and (await banner.text_content() or "").strip()
    headings = page.locator("h1")
    if not explained and (not await headings.count() or not (await headings.first.text_content() or "").strip()):
        problems.append("neither a heading nor a banner saying what is missing")
    await page.close()
    return problems


async def test_every_page_opens_cleanly_for_a_newcomer(node: Any, open_page: Any) -> None:
    newcomer = await node.signup(unique("new"))
    problems = []
    for token in (None, newcomer["token"]):
        who = "logged in" if token else "logged out"
        for name in PAGES:
            problems += [f"/{name} ({who}): {p}" for p in await _problems_of(open_page, f"{node.url}/{name}", token)]
    assert not problems, "\n".join(problems)
