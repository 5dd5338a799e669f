"""Gift icons are SVG files the node serves, named by the catalogue's `icon_url`, drawn without text or fonts, so a
machine without a colour-emoji font shows the same tray as any other."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from livenode import RunningNode
from money import api

from commerce import catalogue

SVG = "{http://www.w3.org/2000/svg}"
ICONS = Path(__file__).resolve().parents[2] / "webui" / "static" / "icons"
# Anything that would fetch, run or need a font: an icon must draw with shapes alone.
FORBIDDEN = {"script", "text", "tspan", "textPath", "foreignObject", "image", "style", "font", "font-face"}
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"


def assert_self_contained_svg(data: bytes, where: str) -> None:
    root = ET.fromstring(data)
    assert root.tag == f"{SVG}svg" and root.get("viewBox"), where
    for element in root.iter():
        assert element.tag.removeprefix(SVG) not in FORBIDDEN, f"{where}: <{element.tag}>"
        assert not [name for name in element.attrib if name.startswith("on") or "font" in name], where
        for link in (element.get("href"), element.get(XLINK_HREF)):
            assert link is None or link.startswith("#"), f"{where}: links to {link}"  # only its own parts


async def test_every_catalogue_gift_has_an_svg_icon_the_node_serves(node: RunningNode) -> None:
    status, body = await api(node, "GET", "/api/gifts")
    assert status == 200 and len(body["gifts"]) >= 10
    for gift in body["gifts"]:
        assert "icon" not in gift  # the emoji is gone, not kept beside the icon
        async with node.http.get(node.url + gift["icon_url"]) as r:
            assert r.status == 200 and r.content_type == "image/svg+xml", gift
            assert_self_contained_svg(await r.read(), gift["id"])


def test_every_icon_in_the_tree_draws_without_fonts_or_fetches() -> None:
    icons = sorted(ICONS.rglob("*.svg"))
    assert {"like.svg", "sound-on.svg", "sound-off.svg"} <= {p.name for p in icons}
    for path in icons:
        assert_self_contained_svg(path.read_bytes(), path.name)


async def test_catalogue_json_keeps_the_stored_icons_current(node: RunningNode) -> None:
    pool = node.node.pool
    rose = "version = 1 AND gift_id = 'rose'"
    stored = await pool.fetchval(f"SELECT icon_url FROM gift_catalogue WHERE {rose}")
    try:
        await pool.execute(f"UPDATE gift_catalogue SET icon_url = '/old/rose.png' WHERE {rose}")
        published = await catalogue.publish(pool)
        assert published.gifts["rose"].icon_url == stored == "/static/icons/gifts/rose.svg"
        coins = await pool.fetchval(f"SELECT coins FROM gift_catalogue WHERE {rose}")
        assert coins == published.gifts["rose"].coins  # the price is never touched
    finally:
        await pool.execute(f"UPDATE gift_catalogue SET icon_url = $1 WHERE {rose}", stored)
