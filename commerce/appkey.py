"""The key under which the app holds the node's `Commerce`: its own module so every routes module of commerce's
subpackages can import it without importing the service that imports them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from commerce.service import Commerce

COMMERCE: web.AppKey[Commerce] = web.AppKey("commerce")
