"""HTTP routes for accounts: sign-up, log-in, log-out, me, follow."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from livecore.accounts import accounts
from livecore.accounts.session import COOKIE, require_account, set_session_cookie
from livecore.http import NO_NUL, NOT_AFTER_TODAY, Id, Problem, json_response, operation, parse_body, path_id
from livecore.node import NODE

USERNAME = r"^[A-Za-z0-9_]{3,30}$"
SelfServiceRole = Literal["viewer", "creator", "advertiser"]  # what sign-up may choose; `livecore grant` adds more


class SignUp(BaseModel):
    username: str = Field(pattern=USERNAME, description="3-30 letters, digits or underscores; case-insensitive")
    password: str = Field(min_length=8, max_length=200)
    birth_date: dt.date = Field(json_schema_extra=NOT_AFTER_TODAY, description="not in the future")
    region: str = Field(pattern=r"^[A-Za-z]{2}$", description="ISO 3166 country code")
    language: str = Field(default="en", pattern=r"^[a-z]{2}$")
    display_name: str = Field(default="", max_length=50, pattern=NO_NUL, description="the username when empty")
    interests: list[Annotated[str, Field(max_length=50, pattern=NO_NUL)]] = Field(default_factory=list, max_length=20)
    roles: list[SelfServiceRole] = Field(default_factory=lambda: ["viewer", "creator"], max_length=3,
                                         description="viewer and creator when empty")


class LogIn(BaseModel):
    username: str = Field(max_length=30, pattern=NO_NUL)
    password: str = Field(max_length=200)


class PublicProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: Id
    username: str
    display_name: str


class Profile(PublicProfile):
    birth_date: dt.date
    region: str
    language: str
    interests: list[str]
    roles: list[str]
    adult: bool


class SignedUp(Profile):
    token: str = Field(description="a bearer token; the session cookie carries the same")


class Session(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(description="a bearer token; the session cookie carries the same")
    user: Profile


class Follows(BaseModel):
    followers: int = Field(ge=0)
    following: int = Field(ge=0)


class Me(Profile, Follows):
    pass


class UserCard(PublicProfile, Follows):
    pass


_COOKIE_SET = {"Set-Cookie": "the session cookie (livecore_session, HttpOnly)"}


@operation("Create an account and log in", body=SignUp, status=201, tag="accounts", reply=SignedUp,
           reply_headers=_COOKIE_SET, problems={409: ["username-taken"]})
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


@operation("Log in; returns a token and sets the session cookie", body=LogIn, tag="accounts", reply=Session,
           reply_headers=_COOKIE_SET, problems={401: ["bad-credentials"]})
async def log_in(request: web.Request) -> web.Response:
    node = request.app[NODE]
    body = await parse_body(request, LogIn)
    account = await accounts.authenticate(node.pool, body.username, body.password)
    token = node.tokens.issue(account.id)
    response = json_response({"token": token, "user": account.profile(node.today())})
    set_session_cookie(response, token, node.settings.token_ttl_s)
    return response


@operation("Log out: clear the session cookie", status=204, tag="accounts",
           reply_headers={"Set-Cookie": "the session cookie, expired"})
async def log_out(request: web.Request) -> web.Response:
    response = web.Response(status=204)
    response.del_cookie(COOKIE, path="/")
    return response


@operation("The caller's profile", auth=True, tag="accounts", reply=Me)
async def me(request: web.Request) -> web.Response:
    node = request.app[NODE]
    account = await require_account(request)
    counts = await accounts.follow_counts(node.pool, account.id)
    return json_response({**account.profile(node.today()), **counts})


@operation("A user's public profile", tag="accounts", reply=UserCard, problems={404: ["user-not-found"]})
async def user_profile(request: web.Request) -> web.Response:
    node = request.app[NODE]
    account = await accounts.get_account(node.pool, path_id(request, "user-not-found", "user"))
    if account is None:
        raise Problem(404, "user-not-found", f"there is no user {request.match_info['id']}")
    return json_response({**account.public(), **await accounts.follow_counts(node.pool, account.id)})


@operation("Follow a user", auth=True, status=204, tag="accounts",
           problems={403: ["self-follow"], 404: ["user-not-found"]})
async def follow(request: web.Request) -> web.Response:
    account = await require_account(request)
    await accounts.follow(request.app[NODE].pool, account.id, path_id(request, "user-not-found", "user"))
    return web.Response(status=204)


@operation("Stop following a user (following nobody is not an error)", auth=True, status=204, tag="accounts",
           problems={404: ["user-not-found"]})
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
