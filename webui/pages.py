"""The pages: each a template on the one layout, rendered with the signed-in account and sent with the CSP.

The Content-Security-Policy is an HTTP header set here, the only copy in the tree: a header covers every page
whatever its template holds, and can say what a meta tag cannot (frame-ancestors).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp_jinja2
from aiohttp import web

from livecore.accounts import Account
from livecore.accounts.session import optional_account
from livecore.http import ANONYMOUS, USER_SECURITY, Content, Handler, Header, Problem, operation

# No inline script or style anywhere: every script is an ES module file and every style is in a stylesheet.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# A page shows who is signed in, so no shared cache may keep it and the browser asks again each time.
PAGE_CACHE_CONTROL = "private, no-cache"


@dataclass(frozen=True)
class Page:
    template: str
    summary: str

    @property
    def path(self) -> str:
        return f"/{self.template}"


PAGES = (
    Page("index.html", "The live directory: who is live now (also served at /)"),
    Page("login.html", "Log in and sign up; ?next= is where to go after"),
    Page("watch.html", "A room (?room=<id>): video, chat, likes, gifts, top gifters, the pinned product and auction"),
    Page("studio.html", "Go live from the browser camera; chat, gifts, products, pins and live auctions"),
    Page("shop.html", "A creator's shop (?user=<id>): their products with mockups"),
    Page("wallet.html", "Buy coins; the balance and recent transactions"),
    Page("pay.html", "The local test provider's card page: a coin purchase (?purchase=<id>) or an order (?order=<id>)"),
    Page("earnings.html", "Creator earnings, the payout account and cash-out"),
    Page("orders.html", "Your orders (?order=<id> points at one) with their tracking, and your shipping address"),
    Page("sales.html", "A creator's sales: paid orders of their products, margins held and released"),
    Page("feed.html", "The feeds: For You and Following, one video at a time (swipe, wheel, keys), live cards; "
                      "?video=<id> starts with that video"),
    Page("ads.html", "The advertiser dashboard: the ad balance, campaigns, a campaign's report with charts"),
    Page("marketplace.html", "The creator marketplace: search listed creators by their audience (advertisers)"),
    Page("creator.html", "A creator's marketplace card (?id=<creator>) and an offer form (advertisers)"),
    Page("offers.html", "Marketplace offers: a creator's listing and inbox (accept, decline, deliver), an "
                        "advertiser's sent offers (cancel)"),
    Page("editor.html", "The editor: clips trimmed on a timeline, speed, a sound, texts and stickers, a preview, the "
                        "render's progress (?sound=<id> starts with a sound, ?challenge=<id> joins a challenge)"),
    Page("sound.html", "A sound (?id=<id>): its artist credited, its licence, the videos that use it, use it"),
    Page("challenges.html", "Challenges, trending first; creators start new ones"),
    Page("challenge.html", "A challenge (?id=<id>): what to do, its sound, its videos ranked, join it"),
)


async def signed_in_account(request: web.Request) -> Account | None:
    """The account behind the request's session, or None; a stale or forged cookie shows the page signed out."""
    try:
        return await optional_account(request)
    except Problem:
        return None


async def render_page(request: web.Request, page: Page) -> web.Response:
    account = await signed_in_account(request)
    context = {"account": account, "login_url": "/login.html?" + urlencode({"next": request.path_qs}),
               "path": request.path}
    response = aiohttp_jinja2.render_template(page.template, request, context)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Cache-Control"] = PAGE_CACHE_CONTROL
    return response


def page_handler(page: Page) -> Handler:
    """A handler for one page, carrying that page's own OpenAPI description."""

    @operation(page.summary, tag="pages", reply=Content.of("text/html"), security=(*USER_SECURITY, ANONYMOUS),
               reply_headers={"Content-Security-Policy": Header("what the page may load and run",
                                                                values=(CONTENT_SECURITY_POLICY,)),
                              "Cache-Control": Header("never kept by a shared cache", values=(PAGE_CACHE_CONTROL,))})
    async def serve_page(request: web.Request) -> web.Response:
        return await render_page(request, page)

    return serve_page
