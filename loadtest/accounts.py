"""The few livecore API calls the benchmark needs: accounts (viewers, publishers, creator) and a room."""

from __future__ import annotations

from typing import Any

import aiohttp

PASSWORD = "loadtest-password-1"
BIRTH_DATE = "1990-01-01"  # adults: the creator must be 18+ to open a stream
REGION = "US"


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
    headers = {"Authorization": f"Bearer {token}"}
    async with session.post(f"{base_url}/api/streams", json={"title": title}, headers=headers) as response:
        if response.status != 201:
            raise ApiError(f"POST /api/streams: {await _problem(response)}")
        return str((await response.json())["id"])


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
