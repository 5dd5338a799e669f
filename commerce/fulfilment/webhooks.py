"""Verifying the fulfilment provider's callbacks: Standard Webhooks (webhook-id, webhook-timestamp and an HMAC in
webhook-signature), checked by the `standardwebhooks` package, which also refuses a timestamp more than five minutes
from the wall clock. The webhook-id is what duplicates are recognised by."""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from livecore.http import Problem


@dataclass(frozen=True)
class Callback:
    webhook_id: str
    type: str
    order: dict[str, Any]


def verify(payload: bytes, headers: dict[str, str], secret: str) -> Callback:
    """The callback in a signed body; 400 `bad-signature` or `malformed-event` otherwise (nothing changes)."""
    try:
        event = Webhook(secret).verify(payload, headers)
    except (WebhookVerificationError, ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Problem(400, "bad-signature", f"the callback's Standard Webhooks signature does not verify: {exc}") \
            from exc
    data = event.get("data") if isinstance(event, dict) else None
    order = data.get("order") if isinstance(data, dict) else None
    if not isinstance(event.get("type"), str) or not isinstance(order, dict) \
            or not isinstance(order.get("external_id"), str) or not isinstance(order.get("seq"), int) \
            or not isinstance(order.get("status"), str):
        raise Problem(400, "malformed-event", "a fulfilment callback needs type and data.order with external_id, "
                      "status and seq")
    webhook_id = next(v for k, v in headers.items() if k.lower() == "webhook-id")
    return Callback(webhook_id, event["type"], order)
