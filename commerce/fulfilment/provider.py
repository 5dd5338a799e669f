"""The fulfilment provider as the shop sees it: shipping quotes, orders made and confirmed, cancellations, and
where its signed callbacks go. The print-on-demand lifecycle its orders follow is in `lifecycle.py`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class FulfilmentUnavailable(Exception):
    """The provider could not be reached or failed (5xx, timeout): try again later."""


class FulfilmentRefused(Exception):
    """The provider refused the request (4xx); `code` is its reason."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


@dataclass(frozen=True)
class Item:
    variant_id: str
    quantity: int


@dataclass(frozen=True)
class Quote:
    service: str
    name: str
    shipping_cents: int
    currency: str
    min_days: int
    max_days: int

    def public(self) -> dict[str, Any]:
        return {"service": self.service, "name": self.name, "shipping_cents": self.shipping_cents,
                "currency": self.currency, "min_delivery_days": self.min_days, "max_delivery_days": self.max_days}


@dataclass(frozen=True)
class ProviderOrder:
    id: str
    status: str
    seq: int
    items_cents: int
    shipping_cents: int


class FulfilmentProvider(Protocol):
    name: str

    async def quote(self, recipient: dict[str, Any], items: list[Item]) -> Quote:
        """The cheapest shipping for these items to this address."""
        ...

    async def place_order(self, external_id: str, recipient: dict[str, Any], items: list[Item]) -> ProviderOrder:
        """Make and confirm the order (the same one again for an external id it knows)."""
        ...

    async def cancel(self, provider_order_id: str) -> ProviderOrder:
        """Ask for the order to be cancelled; the callback that follows says whether it was."""
        ...

    async def register_webhook(self, url: str) -> None:
        """Send the provider's callbacks to `url`."""
        ...


def recipient_of(address: dict[str, Any]) -> dict[str, Any]:
    """A checked shipping address in the provider's words (Printful's recipient)."""
    state = address.get("subdivision")
    return {"name": address["name"], "address1": address["line1"], "address2": address.get("line2") or "",
            "city": address.get("city") or "-", "state_code": state.split("-", 1)[1] if state else "",
            "country_code": address["country"], "zip": address.get("postcode") or "-",
            "phone": address.get("phone") or ""}
