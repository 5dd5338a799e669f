"""The pages' assets from webui/static, under /static/: stylesheets, ES modules, vendored code, icons."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from livecore.http import Problem, operation

STATIC_DIR = Path(__file__).resolve().parent / "static"
# No build step means no content-hashed names, so code is revalidated on every load (a 304 when unchanged): a
# browser must never run an old module against a new node. An icon a day stale is harmless.
ASSET_CACHE_CONTROL = "no-cache"
ICON_CACHE_CONTROL = "public, max-age=86400"


@operation("An asset of the pages: stylesheet, ES module, vendored code or SVG icon (webui/static)", tag="pages")
async def static_asset(request: web.Request) -> web.FileResponse:
    relative = request.match_info["path"]
    path = (STATIC_DIR / relative).resolve()
    if not path.is_relative_to(STATIC_DIR) or not path.is_file():
        raise Problem(404, "not-found", f"there is no asset at /static/{relative}")
    cache = ICON_CACHE_CONTROL if path.suffix == ".svg" else ASSET_CACHE_CONTROL
    return web.FileResponse(path, headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"})
