"""The few livecore API calls the benchmark needs: accounts (viewers, publishers, creator) and a room."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import aiohttp

PASSWORD = "loadtest-password-1"
BIRTH_DATE = "1990-01-01"  # adults: the creator must be 18+ to open a stream
REGION = "US"
TEST_CARD = "4242424242424242"  # the local test provider's card that succeeds
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
