"""Verifying the fulfilment provider's callbacks: Standard Webhooks (webhook-id, webhook-timestamp and an HMAC in
webhook-signature), checked by the `standardwebhooks` package, which also refuses a timestamp more than five minutes
from the wall clock. The webhook-id is what duplicates are recognised by."""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, Field, ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from livecore.http import BIGINT_MAX, NO_NUL, Parameters, Problem

WEBHOOK_ID_CHARS_MAX = 200
_TEXT = {"pattern": NO_NUL, "max_length": 500}


class WebhookHeaders(Parameters):
    """The Standard Webhooks headers; a request without them (or not of their form) is 400 bad-signature."""

    refusal: ClassVar[tuple[int, str]] = (400, "bad-signature")
    webhook_id: str = Field(alias="webhook-id", pattern=r"^[!-~]+$", min_length=1, max_length=WEBHOOK_ID_CHARS_MAX,
                            description="the callback's id: a repeat of one already received changes nothing")
    webhook_timestamp: str = Field(alias="webhook-timestamp", pattern=r"^[0-9]{1,12}$",
                                   description="Unix seconds; more than five minutes from now is refused")
    webhook_signature: str = Field(alias="webhook-signature", pattern=r"^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*$",
                                   max_length=2000, description="v1,<base64 HMAC-SHA256 of id.timestamp.body>, "
                                   "space-separated when there are several")


class TrackingFacts(BaseModel):
    carrier: str | None = Field(default=None, **_TEXT)
    number: str | None = Field(default=None, **_TEXT)
    url: str | None = Field(default=None, **_TEXT)


class CallbackOrder(BaseModel):
    external_id: str = Field(max_length=100, pattern=NO_NUL, description="livecore-order-<order id>; another "
                             "is ignored")
    status: str = Field(max_length=50, pattern=NO_NUL, description="the provider's state; one it does not have "
                        "is ignored")
    seq: int = Field(ge=0, le=BIGINT_MAX, description="the version of the order; an older one changes nothing")
    id: str | None = Field(default=None, **_TEXT)
    tracking: TrackingFacts | None = None
    reason: str | None = Field(default=None, **_TEXT)


class CallbackData(BaseModel):
    order: CallbackOrder


class FulfilmentEvent(BaseModel):
    """A fulfilment callback's body (signed as sent)."""

    type: str = Field(max_length=100, pattern=NO_NUL)
    data: CallbackData


@dataclass(frozen=True)
class Callback:
    webhook_id: str
    type: str
    order: dict[str, Any]


def verify(payload: bytes, headers: WebhookHeaders, secret: str) -> Callback:
    """The callback in a signed body; 400 `bad-signature` or `malformed-event` otherwise (nothing changes)."""
    signed = {"webhook-id": headers.webhook_id, "webhook-timestamp": headers.webhook_timestamp,
              "webhook-signature": headers.webhook_signature}
    try:
        event = Webhook(secret).verify(payload, signed)
    except (WebhookVerificationError, ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Problem(400, "bad-signature", f"the callback's Standard Webhooks signature does not verify: {exc}") \
            from exc
    try:
        checked = FulfilmentEvent.model_validate(event)
    except ValidationError as exc:
        raise Problem(400, "malformed-event", "a fulfilment callback needs type and data.order with external_id, "
                      f"status and seq: {exc.errors()[0]['msg']}") from exc
    return Callback(headers.webhook_id, checked.type, checked.data.order.model_dump(exclude_none=True))
