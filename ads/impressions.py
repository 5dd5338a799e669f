"""The impression token: what a served ad carries so its events can be counted and charged without a lookup.

It is a JWT (HS256) signed with a key derived from the node's shared secret, naming the campaign, ad group,
creative, viewer, the price the auction set and when it was served; events quote it, so a client cannot invent an
impression or change its price, and PostgreSQL alone decides what counts (nothing of it is in Redis).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import jwt

from ads.auction import BidKind
from livecore.accounts.tokens import Tokens


class ImpressionError(Exception):
    """A token that is forged, malformed or too old."""


@dataclass(frozen=True)
class Impression:
    id: str
    campaign_id: int
    ad_group_id: int
    creative_id: int
    user_id: int
    bid_kind: BidKind
    price_millicents: int
    served_ms: int


class ImpressionSigner:
    def __init__(self, tokens: Tokens, ttl_ms: int) -> None:
        # A key of its own, derived from the shared secret: an impression token can never pass as a session token.
        self._key = tokens.node_proof("ads impression tokens")
        self._ttl_ms = ttl_ms

    def issue(self, campaign_id: int, ad_group_id: int, creative_id: int, user_id: int, bid_kind: BidKind,
              price_millicents: int, served_ms: int) -> tuple[str, str]:
        """(impression id, token)."""
        impression_id = secrets.token_hex(12)
        claims = {"i": impression_id, "c": campaign_id, "g": ad_group_id, "cr": creative_id, "u": user_id,
                  "k": bid_kind, "p": price_millicents, "t": served_ms}
        return impression_id, jwt.encode(claims, self._key, algorithm="HS256")

    def verify(self, token: str, now_ms: int) -> Impression:
        try:
            c = jwt.decode(token, self._key, algorithms=["HS256"],
                           options={"require": ["i", "c", "g", "cr", "u", "k", "p", "t"]})
        except jwt.InvalidTokenError as exc:
            raise ImpressionError(f"not an impression token of ours: {exc}") from exc
        if now_ms - int(c["t"]) > self._ttl_ms:
            raise ImpressionError("the impression is too old to be measured (ads_impression_ttl_s)")
        return Impression(str(c["i"]), int(c["c"]), int(c["g"]), int(c["cr"]), int(c["u"]), c["k"], int(c["p"]),
                          int(c["t"]))
