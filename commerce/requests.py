"""What every commerce routes module shares: the app key of the node's `Commerce` (its own module, so the routes
of commerce's subpackages can import it without importing the service that imports them) and idempotency keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from livecore.http import Problem

if TYPE_CHECKING:
    from commerce.service import Commerce

COMMERCE: web.AppKey[Commerce] = web.AppKey("commerce")


def idempotency_key(request: web.Request, from_body: str | None) -> str:
    """The request's idempotency key (body field or Idempotency-Key header); 400 when there is none."""
    key = from_body or request.headers.get("Idempotency-Key", "").strip()
    if not key or len(key) > 100:
        raise Problem(400, "idempotency-key-required",
                      "send an idempotency_key (body field or Idempotency-Key header, 1-100 characters)")
    return key
