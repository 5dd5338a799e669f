"""The pages' assets from webui/static, under /static/: stylesheets, ES modules, vendored code, icons."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.web_fileresponse import CONTENT_TYPES, FALLBACK_CONTENT_TYPE
from pydantic import BaseModel, Field

from livecore.http import Content, Header, Problem, operation

STATIC_DIR = Path(__file__).resolve().parent / "static"
# No build step means no content-hashed names, so code is revalidated on every load (a 304 when unchanged): a
# browser must never run an old module against a new node. An icon a day stale is harmless.
ASSET_CACHE_CONTROL = "no-cache"
ICON_CACHE_CONTROL = "public, max-age=86400"


class Asset(BaseModel):
    path: str = Field(min_length=1, examples=["app.css"], description="a file under webui/static, like js/api.js")


def served_types() -> tuple[str, ...]:
    """The media types of the assets, as aiohttp's FileResponse names them from the file names."""
    found = {CONTENT_TYPES.guess_type(path.name)[0] or FALLBACK_CONTENT_TYPE
             for path in STATIC_DIR.rglob("*") if path.is_file()}
    return tuple(sorted(found))


@operation("An asset of the pages: stylesheet, ES module, vendored code or SVG icon (webui/static); 304 when the "
           "If-None-Match names its ETag", tag="pages", path=Asset,
           reply=Content.of(*served_types(), schema={"type": "string", "format": "binary"}),
           reply_headers={"Cache-Control": Header("icons may be kept a day, code is revalidated",
                                                  values=(ASSET_CACHE_CONTROL, ICON_CACHE_CONTROL)),
                          "X-Content-Type-Options": Header("no type guessing by the browser", values=("nosniff",))},
           responses={304: "Not modified: the ETag sent in If-None-Match is still the file's"},
           problems={404: ["not-found"]}, storage=False)
async def static_asset(request: web.Request) -> web.FileResponse:
    relative = request.match_info["path"]
    path = (STATIC_DIR / relative).resolve()
    if not path.is_relative_to(STATIC_DIR) or not path.is_file():
        raise Problem(404, "not-found", f"there is no asset at /static/{relative}")
    cache = ICON_CACHE_CONTROL if path.suffix == ".svg" else ASSET_CACHE_CONTROL
    return web.FileResponse(path, headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"})
