"""Verifying the payment provider's webhooks: the stripe SDK checks the signature; our clock checks the age.

Secret rotation: every configured secret is tried (Stripe signs with both while a rotation is in progress, and a
payload signed with an old secret still in the list is accepted). Tolerance is judged by the node's clock, in both
directions, so tests can drive it and a signature from the future is as stale as one from the past.
"""

from __future__ import annotations

from typing import Any

import orjson
import stripe
from pydantic import BaseModel, Field, ValidationError

from livecore.http import NO_NUL, Problem


class StripeEvent(BaseModel):
    """What this server reads of a provider's event; the rest of it is the provider's."""

    id: str = Field(min_length=1, max_length=255, pattern=NO_NUL)
    type: str = Field(min_length=1, max_length=255, pattern=NO_NUL, examples=["payment_intent.succeeded"])
    data: dict[str, Any] = Field(default_factory=dict, description="`object`: the payment, charge, transfer or "
                                 "account the event is about")


def verify(payload: bytes, header: str | None, secrets: list[str], now_ms: int, tolerance_s: int) -> dict[str, Any]:
    """The event in a webhook body whose Stripe-Signature one of `secrets` made within the tolerance; else 400."""
    if not header:
        raise Problem(400, "bad-signature", "the Stripe-Signature header is missing")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(400, "bad-signature", "the webhook body is not UTF-8") from exc
    for secret in secrets:
        try:
            # tolerance=None: the SDK checks the HMAC (constant-time); the timestamp is judged by our clock below.
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance=None)
            break
        except stripe.SignatureVerificationError:
            continue
    else:
        raise Problem(400, "bad-signature", "no configured webhook secret made this signature")
    signed_at_s = _timestamp(header)
    if abs(now_ms / 1000 - signed_at_s) > tolerance_s:
        raise Problem(400, "stale-signature", f"the signature is from {signed_at_s}, outside the {tolerance_s} s "
                      "tolerance", rule="webhook_tolerance_s")
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, "malformed-json", f"the webhook body is not JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise Problem(400, "malformed-event", "a webhook event is a JSON object")
    try:
        StripeEvent.model_validate(event)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Problem(400, "malformed-event", f"{where}: {first['msg']}", field=where) from exc
    return event


def sign(payload: bytes, secret: str, now_ms: int) -> str:
    """A Stripe-Signature header for `payload`, made by the stripe SDK (the local provider signs this way)."""
    return stripe.WebhookSignature.generate_signature_header(payload.decode(), secret, timestamp=now_ms // 1000)


def _timestamp(header: str) -> int:
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t" and value.isdigit():
            return int(value)
    raise Problem(400, "bad-signature", "the Stripe-Signature header has no timestamp")


def encode_event(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)
