"""Who is asking: the account behind a request's bearer token or session cookie."""

from __future__ import annotations

from aiohttp import web

from livecore.accounts.accounts import Account
from livecore.accounts.tokens import TokenError
from livecore.http import Problem
from livecore.node import NODE

COOKIE = "livecore_session"


def request_token(request: web.Request) -> str | None:
    """The token from `Authorization: Bearer`, `?token=` (WebSockets) or the session cookie, in that order."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query.get("token") or request.cookies.get(COOKIE)


async def optional_account(request: web.Request) -> Account | None:
    """The caller's account, None when no credentials came, 401 when they are bad."""
    token = request_token(request)
    if not token:
        return None
    node = request.app[NODE]
    try:
        user_id = node.tokens.verify(token)
    except TokenError as exc:
        raise Problem(401, "bad-token", str(exc)) from exc
    account = await node.accounts.get(user_id)
    if account is None:
        raise Problem(401, "bad-token", "the token's account no longer exists")
    return account


async def require_account(request: web.Request) -> Account:
    account = await optional_account(request)
    if account is None:
        raise Problem(401, "unauthenticated", "log in first: send a bearer token or the session cookie")
    return account


def set_session_cookie(response: web.StreamResponse, token: str, max_age_s: int) -> None:
    response.set_cookie(COOKIE, token, max_age=max_age_s, httponly=True, samesite="Lax", path="/")
