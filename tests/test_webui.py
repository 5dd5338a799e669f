"""The pages: every one rendered from the one layout, the CSP once (an HTTP header), what users typed escaped,
the signed-in user in the header, assets under /static/, and no route that answers GET for everything."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import aiohttp
import markupsafe
from livenode import RunningNode
from yarl import URL

from webui import CONTENT_SECURITY_POLICY
from webui.pages import PAGES

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "webui" / "templates"
# Not the project's own text: tools, data and caches.
NOT_SOURCE = {".git", ".venv", ".livecore", ".pytest_cache", ".ruff_cache", "__pycache__", "node_modules"}
PAGE_PATHS = ["/", *(page.path for page in PAGES)]
JAVASCRIPT_TYPES = {"text/javascript", "application/javascript"}  # the system's MIME table picks one


class Markup(HTMLParser):
    """What the tests look at in a page: its tags with their attributes, script bodies, the signed-in name."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_bodies: list[str] = []
        self.session_names: list[str] = []
        self._in_script = self._in_session = self._in_name = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append((tag, found))
        self._in_script = tag == "script"
        self._in_session = self._in_session or found.get("id") == "session-user"
        self._in_name = self._in_session and tag == "strong"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False
        elif tag == "strong":
            self._in_name = False
        elif tag == "span" and not self._in_name:
            self._in_session = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_bodies.append(data)
        if self._in_name:
            self.session_names.append(data)

    def count(self, tag: str, **attrs: str) -> int:
        return sum(1 for name, found in self.tags if name == tag and all(found.get(k) == v for k, v in attrs.items()))


def source_files() -> Iterator[Path]:
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if d not in NOT_SOURCE and not d.endswith(".egg-info")]
        yield from (Path(folder) / name for name in files)


async def _page(node: RunningNode, path: str, token: str | None = None) -> tuple[aiohttp.ClientResponse, str]:
    # A fresh session with no cookie jar: the page sees exactly the session cookie the test means it to.
    headers = {"Cookie": f"livecore_session={token}"} if token else {}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        async with http.get(f"{node.url}{path}", headers=headers) as response:
            return response, await response.text()


def test_every_page_template_extends_the_layout_and_only_the_layout_has_a_head() -> None:
    pages = {page.template for page in PAGES}
    assert {path.name for path in TEMPLATES.glob("*.html")} == pages | {"layout.html"}
    for name in pages:
        text = (TEMPLATES / name).read_text()
        assert text.startswith('{% extends "layout.html" %}\n'), name
        assert not re.search(r"<!doctype|<html|<head[\s>]|site-header|<main", text, re.IGNORECASE), name


def test_the_tree_holds_one_copy_of_the_csp() -> None:
    directives = dict(directive.split(" ", 1) for directive in CONTENT_SECURITY_POLICY.split("; "))
    script_directive = next(name for name in directives if name.startswith("script"))
    assert directives[script_directive] == "'self'" and directives["object-src"] == "'none'"
    # Any file naming the script directive holds a policy, whole or in part; only one may.
    # Test pages standing in for other sites (tests/) carry their own policies; the node's pages have one.
    holders = [p.relative_to(ROOT).as_posix() for p in source_files()
               if script_directive.encode() in p.read_bytes() and p.relative_to(ROOT).parts[0] != "tests"]
    assert holders == ["webui/pages.py"]


async def test_every_page_is_rendered_from_the_layout_with_the_csp_once(node: RunningNode) -> None:
    for path in PAGE_PATHS:
        response, text = await _page(node, path)
        assert response.status == 200 and response.content_type == "text/html", path
        assert response.headers.getall("Content-Security-Policy") == [CONTENT_SECURITY_POLICY], path
        assert response.headers["Cache-Control"] == "private, no-cache", path
        assert text.count(CONTENT_SECURITY_POLICY) == 0 and text.lower().count("<!doctype html>") == 1, path
        page = Markup(text)
        # The layout's marks, each exactly once.
        assert page.count("header", **{"class": "site-header"}) == 1, path
        assert page.count("a", **{"class": "brand", "href": "/"}) == 1, path
        assert page.count("link", rel="stylesheet", href="/static/app.css") == 1, path
        assert page.count("script", type="module", src="/static/js/session.js") == 1, path
        assert page.count("main", id="main") == 1, path
        assert not [attrs for tag, attrs in page.tags if tag == "meta" and "http-equiv" in attrs], path
        # Strict as the CSP: every script an ES module file, no inline script, no inline style or handlers.
        scripts = [attrs for tag, attrs in page.tags if tag == "script"]
        assert len(scripts) == 2 and all(s.get("type") == "module" and s.get("src") for s in scripts), path
        assert all(not body.strip() for body in page.script_bodies), path
        assert page.count("style") == 0, path
        assert not [a for _, attrs in page.tags for a in attrs if a == "style" or a.startswith("on")], path


async def test_the_header_shows_who_is_signed_in(node: RunningNode) -> None:
    account = await node.signup(display_name="Ann Example", roles=["viewer"])
    response, text = await _page(node, "/wallet.html", token=account["token"])
    page = Markup(text)
    assert page.session_names == ["Ann Example"]
    assert page.count("button", id="logout") == 1 and page.count("a", id="login-link") == 0
    _, text = await _page(node, "/")
    assert Markup(text).count("a", id="login-link") == 1 and Markup(text).count("a", id="studio-link") == 0
    _, text = await _page(node, "/", token=account["token"])
    assert Markup(text).count("a", id="studio-link") == 0, "a viewer cannot go live"
    creator = await node.signup(roles=["creator"])
    _, text = await _page(node, "/", token=creator["token"])
    assert Markup(text).count("a", id="studio-link") == 1
    # A forged or stale cookie shows the page signed out; it is not an error.
    response, text = await _page(node, "/wallet.html", token="not-a-token")
    assert response.status == 200 and Markup(text).count("a", id="login-link") == 1


async def test_a_display_name_holding_a_script_is_escaped(node: RunningNode) -> None:
    name = '<script>alert("owned")</script>'
    account = await node.signup(display_name=name)
    for path in PAGE_PATHS:
        if path == "/login.html":
            continue  # the log-in page has no session area
        _, text = await _page(node, path, token=account["token"])
        assert name not in text and "<script>alert" not in text, path
        assert str(markupsafe.escape(name)) in text, path
        assert Markup(text).session_names == [name], path  # shown as text, exactly as typed


async def test_the_login_link_carries_the_page_address_escaped(node: RunningNode) -> None:
    address = '/watch.html?room="><script>alert(1)</script>'
    async with node.http.get(URL(f"{node.url}{address}", encoded=True)) as r:  # sent as typed, not %-encoded
        assert r.status == 200
        text = await r.text()
    assert "<script>alert" not in text
    link = next(attrs for tag, attrs in Markup(text).tags if tag == "a" and attrs.get("id") == "login-link")
    href = URL(str(link["href"]))
    assert href.path == "/login.html" and href.query["next"] == address


async def test_assets_are_served_under_static_and_nothing_else_answers(node: RunningNode) -> None:
    async with node.http.get(f"{node.url}/static/app.css") as r:
        assert r.status == 200 and r.content_type == "text/css" and r.headers["Cache-Control"] == "no-cache"
        etag = r.headers["ETag"]
    async with node.http.get(f"{node.url}/static/app.css", headers={"If-None-Match": etag}) as r:
        assert r.status == 304  # revalidation is cheap, so code can be revalidated on every load
    for module in ("/static/js/api.js", "/static/vendor/hls.light.min.mjs"):
        async with node.http.get(f"{node.url}{module}") as r:  # a browser runs a module only with a JS type
            assert r.status == 200 and r.content_type in JAVASCRIPT_TYPES, module
    for path in ("/static/js/nope.js", "/static/%2e%2e/pages.py", "/static/..%2Fpages.py", "/app.css",
                 "/index.htm", "/templates/layout.html"):
        async with node.http.get(URL(f"{node.url}{path}", encoded=True)) as r:
            assert r.status == 404 and r.content_type == "application/problem+json", path


async def test_a_wrong_method_is_told_the_methods_that_exist(node: RunningNode) -> None:
    # No catch-all GET: an API route names only its own methods, a page only GET and HEAD.
    async with node.http.put(f"{node.url}/api/accounts") as r:
        assert r.status == 405 and {m.strip() for m in r.headers["Allow"].split(",")} == {"POST"}
    async with node.http.post(f"{node.url}/watch.html") as r:
        assert r.status == 405 and {m.strip() for m in r.headers["Allow"].split(",")} == {"GET", "HEAD"}
    async with node.http.head(f"{node.url}/") as r:
        assert r.status == 200
