"""HTTP plumbing shared by every context: problem+json errors, body parsing, JSON responses, route docs.

Handlers stay thin: `body = await parse_body(request, Model)`, call one domain function, `return json_response(...)`.
Raising `Problem` anywhere below a handler becomes an `application/problem+json` answer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

log = logging.getLogger("livecore.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)
PROBLEM_TYPE = "application/problem+json"


class Problem(Exception):
    """An error a client can read: a stable `livecore:<slug>` type, a title, a status and a human detail."""

    def __init__(self, status: int, slug: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {
            "type": f"livecore:{self.slug}",
            "title": self.slug.replace("-", " ").capitalize(),
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=problem.status, body=orjson.dumps(problem.body()), content_type=PROBLEM_TYPE, headers=headers
    )


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json", headers=headers)


async def parse_body(request: web.Request, model: type[M]) -> M:
    """The request's JSON body validated against `model`, or a 400/415 Problem naming what is wrong."""
    if request.content_type not in ("application/json", ""):
        raise Problem(415, "unsupported-media-type", f"expected application/json, got {request.content_type}")
    raw = await request.read()
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise Problem(400, "malformed-json", f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise Problem(400, "malformed-json", "the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise Problem(400, "invalid-field", f"{where}: {first['msg']}", field=where) from exc


BIGINT_MAX = 2**63 - 1  # ids are PostgreSQL bigints


def path_id(request: web.Request, slug: str, noun: str, name: str = "id") -> int:
    """An integer id from the URL path; anything that cannot be one of ours is a 404 `slug`, never a 500."""
    raw = request.match_info[name]
    if raw.isascii() and raw.isdigit() and len(raw) <= 19 and int(raw) <= BIGINT_MAX:
        return int(raw)
    raise Problem(404, slug, f"there is no {noun} {raw!r}")


def operation(
    summary: str,
    *,
    body: type[BaseModel] | None = None,
    status: int = 200,
    auth: bool = False,
    tag: str = "",
    responses: dict[int, str] | None = None,
) -> Callable[[Handler], Handler]:
    """Attach the OpenAPI description to a handler; every routed handler must carry one."""

    def attach(handler: Handler) -> Handler:
        handler.openapi = {  # type: ignore[attr-defined]
            "summary": summary, "body": body, "status": status, "auth": auth, "tag": tag,
            "responses": responses or {},
        }
        return handler

    return attach


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn Problems and aiohttp's own HTTP errors into problem+json; a bug becomes a logged 500, not a crash."""
    try:
        return await handler(request)
    except Problem as problem:
        return problem_response(problem)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == PROBLEM_TYPE:
            raise
        slug = {404: "not-found", 405: "method-not-allowed", 413: "body-too-large"}.get(exc.status, "http-error")
        return problem_response(Problem(exc.status, slug, exc.reason or slug), headers=_allow_header(exc))
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(Problem(500, "internal", "an internal error occurred; it has been logged"))


def _allow_header(exc: web.HTTPException) -> dict[str, str] | None:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else None
