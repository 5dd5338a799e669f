"""Opaque page cursors: base64url JSON that names the feed it belongs to; anything else is a 400 bad-cursor."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from livecore.http import BIGINT_MAX, Problem


def encode(feed: str, **position: Any) -> str:
    raw = orjson.dumps({"f": feed, **position})
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode(cursor: str, feed: str) -> dict[str, Any]:
    """The position `encode` put in a cursor of `feed`; 400 bad-cursor for one that is not."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise _bad(feed) from exc
    if not isinstance(data, dict) or data.get("f") != feed:
        raise _bad(feed)
    return data


def encode_before(feed: str, before_id: int) -> str:
    return encode(feed, b=before_id)


def decode_before(cursor: str, feed: str) -> int:
    before = decode(cursor, feed).get("b")
    if not isinstance(before, int) or isinstance(before, bool) or not 1 <= before <= BIGINT_MAX:
        raise _bad(feed)
    return before


def _bad(feed: str) -> Problem:
    return Problem(400, "bad-cursor", f"cursor: not a cursor of this {feed} feed; use next_cursor as it was given",
                   field="cursor")
