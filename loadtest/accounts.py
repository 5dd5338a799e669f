"""The few livecore API calls the benchmark needs: accounts (viewers, publishers, creator) and a room."""

from __future__ import annotations

import asyncio
import io
import secrets
from typing import Any

import aiohttp
from PIL import Image

PASSWORD = "loadtest-password-1"
BIRTH_DATE = "1990-01-01"  # adults: the creator must be 18+ to open a stream
REGION = "US"
TEST_CARD = "4242424242424242"  # the local test provider's card that succeeds
AUCTION_VARIANT = "tshirt-s-black"  # base cost 1295: its floor is below the start
AUCTION_START_CENTS = 2000
AUCTION_DURATION_S_MAX = 3600  # the node's default auction_duration_s_max
WALLET_POLL_S = 0.2
WALLET_POLLS_MAX = 100


class ApiError(RuntimeError):
    """The server answered an API call with an error; the message carries its problem details."""


async def account_token(session: aiohttp.ClientSession, base_url: str, username: str) -> str:
    """Sign `username` up, or log in if it already exists (a reused data dir); return its bearer token."""
    body = {"username": username, "password": PASSWORD, "birth_date": BIRTH_DATE, "region": REGION}
    async with session.post(f"{base_url}/api/accounts", json=body) as response:
        if response.status == 201:
            return str((await response.json())["token"])
        if response.status != 409:
            raise ApiError(f"POST /api/accounts {username}: {await _problem(response)}")
    login = {"username": username, "password": PASSWORD}
    async with session.post(f"{base_url}/api/sessions", json=login) as response:
        if response.status != 200:
            raise ApiError(f"POST /api/sessions {username}: {await _problem(response)}")
        return str((await response.json())["token"])


async def create_stream(session: aiohttp.ClientSession, base_url: str, token: str, title: str) -> str:
    """Open a stream as the creator; its id is the room the viewers join."""
    return str((await open_stream(session, base_url, token, title))["id"])


async def open_stream(session: aiohttp.ClientSession, base_url: str, token: str, title: str) -> dict[str, Any]:
    """Open a stream as the creator: its id (the room) and its stream key (to publish with)."""
    headers = {"Authorization": f"Bearer {token}"}
    async with session.post(f"{base_url}/api/streams", json={"title": title}, headers=headers) as response:
        if response.status != 201:
            raise ApiError(f"POST /api/streams: {await _problem(response)}")
        return dict(await response.json())


async def buy_coins(session: aiohttp.ClientSession, base_url: str, token: str, package_id: str) -> None:
    """Buy a coin package through the node's local test provider and wait until the coins are in the wallet."""
    headers = {"Authorization": f"Bearer {token}"}
    body = {"package_id": package_id, "idempotency_key": secrets.token_hex(8)}
    async with session.post(f"{base_url}/api/coins/purchases", json=body, headers=headers) as response:
        if response.status != 201:
            raise ApiError(f"POST /api/coins/purchases: {await _problem(response)}")
        purchase = await response.json()
    confirm = {"card_number": TEST_CARD}
    async with session.post(f"{base_url}/api/payments/local/{purchase['id']}/confirm", json=confirm,
                            headers=headers) as response:
        if response.status >= 300:
            raise ApiError(f"confirming purchase {purchase['id']}: {await _problem(response)}")
    for _ in range(WALLET_POLLS_MAX):
        async with session.get(f"{base_url}/api/wallet", headers=headers) as response:
            if (await response.json()).get("coins", 0) > 0:
                return
        await asyncio.sleep(WALLET_POLL_S)
    raise ApiError("the coins bought did not reach the wallet")


async def wait_live(session: aiohttp.ClientSession, base_url: str, stream_id: str) -> None:
    """Until the stream's state is live (the node marks it once the publisher's media flows)."""
    for _ in range(WALLET_POLLS_MAX):
        async with session.get(f"{base_url}/api/streams/{stream_id}") as response:
            if (await response.json()).get("state") == "live":
                return
        await asyncio.sleep(WALLET_POLL_S)
    raise ApiError(f"stream {stream_id} did not go live")


async def _problem(response: aiohttp.ClientResponse) -> str:
    text = await response.text()
    detail: Any = text[:300]
    if response.content_type in ("application/problem+json", "application/json"):
        try:
            body = await response.json(content_type=None)
            detail = f"{body.get('type')}: {body.get('detail') or body.get('title')}"
        except ValueError:
            pass
    return f"HTTP {response.status} {detail}"


async def save_test_card(session: aiohttp.ClientSession, base_url: str, token: str) -> None:
    """Save the local test provider's card: a bidder needs a payment method."""
    headers = {"Authorization": f"Bearer {token}"}
    async with session.post(f"{base_url}/api/payment-methods", json={"card_number": TEST_CARD},
                            headers=headers) as response:
        if response.status != 201:
            raise ApiError(f"POST /api/payment-methods: {await _problem(response)}")


async def open_auction(session: aiohttp.ClientSession, base_url: str, token: str, stream_id: str,
                       duration_s: float) -> int:
    """A product on a drawn design, auctioned in the creator's live room by the dollar; the auction's id."""
    headers = {"Authorization": f"Bearer {token}"}
    image = io.BytesIO()
    Image.new("RGBA", (400, 300), (230, 40, 90, 255)).save(image, "PNG")
    form = aiohttp.FormData()
    form.add_field("file", image.getvalue(), filename="design.png", content_type="image/png")
    async with session.post(f"{base_url}/api/designs", data=form, headers=headers) as response:
        if response.status != 201:
            raise ApiError(f"POST /api/designs: {await _problem(response)}")
        design = await response.json()
    product_body = {"design_id": design["id"], "base_item_id": "tshirt", "title": "Load test tee",
                    "price_cents": 2500, "variant_ids": [AUCTION_VARIANT]}
    async with session.post(f"{base_url}/api/products", json=product_body, headers=headers) as response:
        if response.status != 201:
            raise ApiError(f"POST /api/products: {await _problem(response)}")
        product = await response.json()
    terms = {"product_id": product["id"], "variant_id": AUCTION_VARIANT, "start_cents": AUCTION_START_CENTS,
             "duration_s": int(min(AUCTION_DURATION_S_MAX, duration_s)), "increments": "dollar",
             "idempotency_key": secrets.token_hex(8)}
    async with session.post(f"{base_url}/api/streams/{stream_id}/auctions", json=terms,
                            headers=headers) as response:
        if response.status != 201:
            raise ApiError(f"POST /api/streams/{stream_id}/auctions: {await _problem(response)}")
        return int((await response.json())["id"])
