"""HTTP routes for accounts: sign-up, log-in, log-out, me, follow."""

from __future__ import annotations

import datetime as dt

from aiohttp import web
from pydantic import BaseModel, Field, field_validator

from livecore.accounts import accounts
from livecore.accounts.session import COOKIE, require_account, set_session_cookie
from livecore.http import Problem, json_response, operation, parse_body, path_id
from livecore.node import NODE


class SignUp(BaseModel):
    username: str = Field(pattern=r"^[A-Za-z0-9_]{3,30}$", description="3-30 letters, digits or underscores")
    password: str = Field(min_length=8, max_length=200)
    birth_date: dt.date
    region: str = Field(pattern=r"^[A-Za-z]{2}$", description="ISO 3166 country code")
    language: str = Field(default="en", pattern=r"^[a-z]{2}$")
    display_name: str = Field(default="", max_length=50)
    interests: list[str] = Field(default_factory=list, max_length=20)
    roles: list[str] = Field(default_factory=lambda: ["viewer", "creator"])

    @field_validator("roles")
    @classmethod
    def self_service_roles(cls, roles: list[str]) -> list[str]:
        allowed = {"viewer", "creator", "advertiser"}
        if not set(roles) <= allowed:
            raise ValueError(f"roles may only be chosen from {sorted(allowed)} at sign-up")
        return roles


class LogIn(BaseModel):
    username: str = Field(max_length=30)
    password: str = Field(max_length=200)


@operation("Create an account and log in", body=SignUp, status=201, tag="accounts")
async def sign_up(request: web.Request) -> web.Response:
    node = request.app[NODE]
    body = await parse_body(request, SignUp)
    if body.birth_date > node.today():
        raise Problem(400, "invalid-field", "birth_date: cannot be in the future", field="birth_date")
    account = await accounts.create_account(
        node.pool, username=body.username.lower(), password=body.password, birth_date=body.birth_date,
        region=body.region, language=body.language, display_name=body.display_name,
        interests=body.interests, roles=body.roles,
    )
    token = node.tokens.issue(account.id)
    response = json_response({**account.profile(node.today()), "token": token}, status=201)
    set_session_cookie(response, token, node.settings.token_ttl_s)
    return response


@operation("Log in; returns a token and sets the session cookie", body=LogIn, tag="accounts")
async def log_in(request: web.Request) -> web.Response:
    node = request.app[NODE]
    body = await parse_body(request, LogIn)
    account = await accounts.authenticate(node.pool, body.username, body.password)
    token = node.tokens.issue(account.id)
    response = json_response({"token": token, "user": account.profile(node.today())})
    set_session_cookie(response, token, node.settings.token_ttl_s)
    return response


@operation("Log out: clear the session cookie", tag="accounts")
async def log_out(request: web.Request) -> web.Response:
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path="/")
    return response


@operation("The caller's profile", auth=True, tag="accounts")
async def me(request: web.Request) -> web.Response:
    node = request.app[NODE]
    account = await require_account(request)
    counts = await accounts.follow_counts(node.pool, account.id)
    return json_response({**account.profile(node.today()), **counts})


@operation("A user's public profile", tag="accounts")
async def user_profile(request: web.Request) -> web.Response:
    node = request.app[NODE]
    account = await accounts.get_account(node.pool, path_id(request, "user-not-found", "user"))
    if account is None:
        raise Problem(404, "user-not-found", f"there is no user {request.match_info['id']}")
    return json_response({**account.public(), **await accounts.follow_counts(node.pool, account.id)})


@operation("Follow a user", auth=True, status=204, tag="accounts")
async def follow(request: web.Request) -> web.Response:
    account = await require_account(request)
    await accounts.follow(request.app[NODE].pool, account.id, path_id(request, "user-not-found", "user"))
    return web.Response(status=204)


@operation("Stop following a user", auth=True, status=204, tag="accounts")
async def unfollow(request: web.Request) -> web.Response:
    account = await require_account(request)
    await accounts.unfollow(request.app[NODE].pool, account.id, path_id(request, "user-not-found", "user"))
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/accounts", sign_up)
    app.router.add_post("/api/sessions", log_in)
    app.router.add_delete("/api/sessions", log_out)
    app.router.add_get("/api/me", me)
    app.router.add_get("/api/users/{id}", user_profile)
    app.router.add_post("/api/users/{id}/follow", follow)
    app.router.add_delete("/api/users/{id}/follow", unfollow)
