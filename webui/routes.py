"""The web UI's routes: each page at its own URL (/ is the directory) and the assets under /static/."""

from __future__ import annotations

import aiohttp_jinja2
import jinja2
from aiohttp import web

from webui import assets
from webui.pages import PAGES, page_handler


def add_routes(app: web.Application) -> None:
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("webui", "templates"),
        # Every variable is HTML-escaped: display names and titles come from users.
        autoescape=True,
        # A template naming a variable the handler did not pass fails loudly instead of rendering blank.
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        default_helpers=False,
    )
    for page in PAGES:
        handler = page_handler(page)
        app.router.add_get(page.path, handler)
        if page.template == "index.html":
            app.router.add_get("/", handler)
    app.router.add_get("/static/{path:.+}", assets.static_asset)
