"""HTTP plumbing shared by every context: problem+json errors, request parsing, JSON responses, route docs.

Handlers stay thin: `body = await parse_body(request, Model)`, call one domain function, `return json_response(...)`.
Raising `Problem` anywhere below a handler becomes an `application/problem+json` answer. The models a handler
validates with are the ones its `@operation` names, and `GET /api/openapi.json` is built from them (openapi.py).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from livecore.outage import Part, unreachable_part

log = logging.getLogger("livecore.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)
PROBLEM_TYPE = "application/problem+json"

RETRY_AFTER_S = web.AppKey("unavailable_retry_after_s", int)  # the node's setting, for the 503 of an outage
RETRY_AFTER_S_DEFAULT = 5

BIGINT_MAX = 2**63 - 1  # ids and amounts are PostgreSQL bigints
Id = Annotated[int, Field(ge=1, le=BIGINT_MAX, description="an id (a PostgreSQL bigint)")]
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL, so no stored string may carry one


def minimum_setting(name: str) -> dict[str, str]:
    """`json_schema_extra` for a number whose least value is the node setting `name` (filled in per node)."""
    return {"x-minimum-setting": name}


def maximum_setting(name: str) -> dict[str, str]:
    """`json_schema_extra` for a number whose greatest value is the node setting `name` (filled in per node)."""
    return {"x-maximum-setting": name}


def max_items_setting(name: str) -> dict[str, str]:
    """`json_schema_extra` for a list whose greatest length is the node setting `name` (filled in per node)."""
    return {"x-max-items-setting": name}


NOT_AFTER_TODAY = {"x-not-after": "today"}  # `json_schema_extra` for a date that cannot be in the future


class Problem(Exception):
    """An error a client can read: a stable `livecore:<slug>` type, a title, a status and a human detail."""

    def __init__(self, status: int, slug: str, detail: str, *, headers: Mapping[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {
            "type": f"livecore:{self.slug}",
            "title": self.slug.replace("-", " ").capitalize(),
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }


def problem_response(problem: Problem, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(status=problem.status, body=orjson.dumps(problem.body()), content_type=PROBLEM_TYPE,
                        headers={**problem.headers, **(headers or {})} or None)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json", headers=headers)


class Parameters(BaseModel):
    """Query parameters or headers of one operation: fields are named by their alias (`Stripe-Signature`), and a
    request that does not fit is refused with `refusal` (status, slug) and `refusal_headers`."""

    refusal: ClassVar[tuple[int, str]] = (400, "invalid-field")
    refusal_headers: ClassVar[dict[str, str]] = {}


P = TypeVar("P", bound=Parameters)


async def parse_body(request: web.Request, model: type[M], defaults: Mapping[str, Any] | None = None) -> M:
    """The request's JSON body validated against `model`, or a 400/415 Problem naming what is wrong.

    `defaults` fills fields the body leaves out (a value that also may come from a header)."""
    if request.content_type not in ("application/json", ""):
        raise Problem(415, "unsupported-media-type", f"expected application/json, got {request.content_type}")
    raw = await request.read()
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise Problem(400, "malformed-json", f"the body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise Problem(400, "malformed-json", "the body must be a JSON object")
    for name, value in (defaults or {}).items():
        if value is not None:
            data.setdefault(name, value)
    return _validated(model, data, 400, "invalid-field")


def parse_query(request: web.Request, model: type[P]) -> P:
    """The query parameters `model` names, validated; else its `refusal`."""
    return _validated(model, _named(request.query, model), *_refusal(model), model.refusal_headers)


def parse_headers(request: web.Request, model: type[P]) -> P:
    """The headers `model` names (case-insensitively), validated; else its `refusal`."""
    return _validated(model, _named(request.headers, model), *_refusal(model), model.refusal_headers)


def _refusal(model: type[Parameters]) -> tuple[int, str]:
    if model.refusal is None:
        raise TypeError(f"{model.__name__} has no refusal: it describes parameters nobody validates")
    return model.refusal



def _named(values: Mapping[str, str], model: type[BaseModel]) -> dict[str, str]:
    names = (info.alias or name for name, info in model.model_fields.items())
    return {name: values[name] for name in names if name in values}


def _validated(model: type[M], data: dict[str, Any], status: int, slug: str,
               headers: Mapping[str, str] | None = None) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise Problem(status, slug, f"{where}: {_explained(model, first)}", headers=headers, field=where) from exc


def _explained(model: type[BaseModel], error: Any) -> str:
    """Pydantic's message, or for a pattern the field's own description (a regular expression helps nobody)."""
    if error["type"] != "string_pattern_mismatch":
        return str(error["msg"])
    if error.get("ctx", {}).get("pattern") == NO_NUL:
        return "text may not hold NUL characters"
    for name, info in model.model_fields.items():
        if len(error["loc"]) == 1 and error["loc"][0] in (name, info.alias) and info.description:
            return f"should be {info.description}"
    return str(error["msg"])


def path_id(request: web.Request, slug: str, noun: str, name: str = "id") -> int:
    """An integer id from the URL path (an `Id`); anything that cannot be one of ours is a 404 `slug`, never a 500."""
    raw = request.match_info[name]
    if raw.isascii() and raw.isdigit() and len(raw) <= 19 and 1 <= int(raw) <= BIGINT_MAX:
        return int(raw)
    raise Problem(404, slug, f"there is no {noun} {raw!r}")


@dataclass(frozen=True)
class Content:
    """A body that is not a JSON model: its media types and the JSON Schema of what they carry (or a model)."""

    media_types: tuple[str, ...]
    schema: dict[str, Any] | type[BaseModel]

    @classmethod
    def of(cls, *media_types: str, schema: dict[str, Any] | type[BaseModel] | None = None) -> Content:
        """`media_types` carrying `schema` (text when none is given)."""
        return cls(media_types, schema if schema is not None else {"type": "string"})


@dataclass(frozen=True)
class Header:
    """A reply header: what it says, whether every such answer carries it, and the values it can have (any string
    when none are listed)."""

    description: str
    required: bool = True
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class OperationDoc:
    """What `@operation` says about a handler; openapi.py turns it into the OpenAPI operation."""

    summary: str
    status: int
    tag: str
    body: type[BaseModel] | Content | None
    reply: type[BaseModel] | Content | None
    reply_headers: dict[str, Header]
    reply_statuses: tuple[int, ...]
    query: type[Parameters] | None
    headers: type[Parameters] | None
    path: type[BaseModel] | None
    security: tuple[str, ...]
    responses: dict[int, str]
    problems: dict[int, tuple[str, ...]]


USER_SECURITY = ("bearer", "cookie", "query_token")  # how a request names its account (accounts/session.py)
ANONYMOUS = ""  # in `security`: the operation also serves a request without credentials


def operation(
    summary: str,
    *,
    body: type[BaseModel] | Content | None = None,
    status: int = 200,
    auth: bool = False,
    tag: str = "",
    responses: dict[int, str] | None = None,
    reply: type[BaseModel] | Content | None = None,
    reply_headers: Mapping[str, str | Header] | None = None,
    reply_statuses: Iterable[int] = (),
    problems: Mapping[int, Iterable[str]] | None = None,
    query: type[Parameters] | None = None,
    headers: type[Parameters] | None = None,
    path: type[BaseModel] | None = None,
    security: Sequence[str] | None = None,
    storage: bool = True,
) -> Callable[[Handler], Handler]:
    """Attach the OpenAPI description to a handler; every routed handler must carry one.

    `status`, `reply_statuses` and any 1xx-3xx in `responses` answer `reply` (a model for JSON, or `Content`)
    with `reply_headers` (a description, or a `Header` that may be optional); `responses` describes statuses in words;
    `problems` lists the problem slugs each error status can carry. Errors that follow from the rest are added:
    a JSON `body` can be malformed (400, 413, 415), `auth` can be missing or bad (401), `query` and `headers`
    refuse with their model's `refusal`, and unless `storage` is False (a handler that reads neither PostgreSQL nor
    Redis) an outage of either answers 503 `unavailable`. Path parameters are `path`'s fields; without it `{id}` is
    an `Id`.
    """
    found: dict[int, set[str]] = {code: set(slugs) for code, slugs in (problems or {}).items()}

    def add(code: int, *slugs: str) -> None:
        found.setdefault(code, set()).update(slugs)

    if isinstance(body, type):
        add(400, "malformed-json", "invalid-field")
        add(415, "unsupported-media-type")
    if body is not None:
        add(413, "body-too-large")
    if auth:
        add(401, "unauthenticated", "bad-token")
    for model in (query, headers):
        if model is not None and model.refusal is not None:
            add(*model.refusal)
    if storage:
        add(503, "unavailable")
    doc = OperationDoc(
        summary=summary, status=status, tag=tag, body=body, reply=reply,
        reply_headers={name: Header(h) if isinstance(h, str) else h for name, h in (reply_headers or {}).items()},
        reply_statuses=tuple(reply_statuses),
        query=query, headers=headers, path=path,
        security=tuple(security) if security is not None else (USER_SECURITY if auth else ()),
        responses=dict(responses or {}), problems={code: tuple(sorted(slugs)) for code, slugs in found.items()},
    )

    def attach(handler: Handler) -> Handler:
        handler.openapi = doc  # type: ignore[attr-defined]
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
        if isinstance(exc, web.HTTPMethodNotAllowed):  # the methods of every route whose path matches
            allow = ", ".join(sorted(exc.allowed_methods))
            return problem_response(Problem(405, "method-not-allowed", f"{request.path} answers {allow}, not "
                                            f"{request.method}", headers={"Allow": allow}))
        slug = {404: "not-found", 413: "body-too-large"}.get(exc.status, "http-error")
        return problem_response(Problem(exc.status, slug, exc.reason or slug))
    except Exception as exc:
        part = unreachable_part(exc)
        if part is not None:
            log.warning("%s %s answered 503: the %s is unreachable: %r", request.method, request.path, part, exc)
            return problem_response(unavailable(part, request.app.get(RETRY_AFTER_S, RETRY_AFTER_S_DEFAULT)))
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(Problem(500, "internal", "an internal error occurred; it has been logged"))


def unavailable(part: Part, retry_after_s: int) -> Problem:
    """The 503 of a request that failed because PostgreSQL (`database`) or Redis (`bus`) could not be reached."""
    what = {"database": "the database (PostgreSQL)", "bus": "the event bus (Redis)"}[part]
    return Problem(503, "unavailable", f"{what} cannot be reached right now; try again in {retry_after_s} s",
                   headers={"Retry-After": str(retry_after_s)}, unavailable=part)

