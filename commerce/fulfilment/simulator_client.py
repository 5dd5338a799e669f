"""The fulfilment provider reached over HTTP: the print-on-demand simulator (fulfilment_sim), whose API is
shaped like Printful's v1 in cents. A real provider's adapter would implement the same `FulfilmentProvider`."""

from __future__ import annotations

from typing import Any

import aiohttp

from commerce.fulfilment.provider import (
    FulfilmentRefused,
    FulfilmentUnavailable,
    Item,
    ProviderOrder,
    Quote,
)


class SimulatorProvider:
    name = "simulator"

    def __init__(self, base_url: str, api_key: str, timeout_s: int) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def quote(self, recipient: dict[str, Any], items: list[Item]) -> Quote:
        found = await self._call("POST", "/v1/shipping/rates", {"recipient": recipient, "items": _items(items)})
        rates = found.get("rates") or []
        if not rates:
            raise FulfilmentRefused("no-shipping", "the provider does not ship there")
        best = min(rates, key=lambda r: r["rate_cents"])
        return Quote(best["id"], best["name"], best["rate_cents"], best["currency"], best["min_delivery_days"],
                     best["max_delivery_days"])

    async def place_order(self, external_id: str, recipient: dict[str, Any], items: list[Item]) -> ProviderOrder:
        found = await self._call("POST", "/v1/orders", {"external_id": external_id, "recipient": recipient,
                                                        "items": _items(items), "confirm": True})
        return _order(found)

    async def cancel(self, provider_order_id: str) -> ProviderOrder:
        return _order(await self._call("POST", f"/v1/orders/{provider_order_id}/cancel", {}))

    async def register_webhook(self, url: str) -> None:
        await self._call("PUT", "/v1/webhook", {"url": url})

    async def _call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        try:
            async with self._session.request(method, self._base + path, json=body) as response:
                found = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise FulfilmentUnavailable(f"the fulfilment provider did not answer {method} {path}: {exc}") from exc
        if status >= 500:
            raise FulfilmentUnavailable(f"the fulfilment provider failed on {method} {path} ({status})")
        if status >= 400:
            error = (found or {}).get("error") or {}
            raise FulfilmentRefused(error.get("code", "refused"), error.get("message", f"{status} on {path}"))
        return found


def _items(items: list[Item]) -> list[dict[str, Any]]:
    return [{"variant_id": i.variant_id, "quantity": i.quantity} for i in items]


def _order(found: dict[str, Any]) -> ProviderOrder:
    costs = found["costs"]
    return ProviderOrder(found["id"], found["status"], found["seq"], costs["items_cents"], costs["shipping_cents"])
