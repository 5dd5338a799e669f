"""`GET /api/openapi.json`: OpenAPI 3.1 built from the routes, the `@operation` on each handler and the models it
names (the same pydantic models the handler validates with), with this node's settings filled in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from pydantic import BaseModel, TypeAdapter

from livecore.config import Settings
from livecore.cors import ANY, CORS_RULES, CorsRule, rule_for
from livecore.http import (
    ANONYMOUS,
    PROBLEM_TYPE,
    Content,
    Header,
    Id,
    OperationDoc,
    Parameters,
    json_response,
    operation,
)
from livecore.node import NODE

_REF = "#/components/schemas/{model}"
# Schemas that depend on more than settings (a catalogue, say): a model whose schema has "x-filled-by": name gets
# the members that app[SCHEMA_FILLERS][name]() answers when the document is built.
SchemaFiller = Callable[[], dict[str, Any]]
SCHEMA_FILLERS = web.AppKey("schema_fillers", dict[str, SchemaFiller])
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": "a token from POST /api/accounts or POST /api/sessions"},
    "cookie": {"type": "apiKey", "in": "cookie", "name": "livecore_session",
               "description": "the session cookie that sign-up and log-in set"},
    "query_token": {"type": "apiKey", "in": "query", "name": "token",
                    "description": "the same token as a query parameter, for clients that cannot set headers "
                                   "(browsers opening a WebSocket)"},
    "stream_key": {"type": "http", "scheme": "bearer",
                   "description": "a stream's key (stream_key from POST /api/streams): WHIP's bearer token"},
}
PROBLEM_SCHEMA = {
    "type": "object", "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "pattern": "^livecore:[a-z0-9-]+$", "description": "stable: livecore:<slug>"},
        "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
        "field": {"type": "string", "description": "the input that was wrong"},
        "rule": {"type": "string", "description": "the rule or setting that refused"},
        "limit_value": {"type": "integer", "description": "that setting's value"},
    },
    "description": "An error as application/problem+json (RFC 9457); some types add their own members.",
}
_PROBLEM_HEADERS = {  # RFC 9110
    426: {"Upgrade": Header("the protocol to switch to", values=("websocket",))},
    503: {"Retry-After": Header("seconds to wait before trying again (sent with livecore:unavailable)",
                                required=False)},
}
_NO_CONTENT = (101, 204, 304)


_DESCRIPTION = (
    "Live streaming and live commerce: accounts, streams, rooms, money. Bounds marked x-minimum-setting / "
    "x-maximum-setting are this node's settings. Access-Control-* headers are listed where this node's "
    "*_cors_origins settings open a path to other origins: required when any origin may, else sent when the "
    "request's Origin is one listed. A CORS preflight (OPTIONS with such an Origin and "
    "Access-Control-Request-Method) to such a path is answered 204 with them, also where no OPTIONS is listed."
)


def documented_routes(app: web.Application) -> list[tuple[str, str, Any]]:
    """(method, path, handler) for every route the node serves, static files and implicit HEADs excepted."""
    found = []
    for route in app.router.routes():
        if route.method == "HEAD" or isinstance(route.resource, web.StaticResource):
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if path:
            found.append((route.method, path, route.handler))
    return found


def build_spec(app: web.Application) -> dict[str, Any]:
    """The OpenAPI document of `app`; LookupError names a route that has no `@operation`."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    rules = app.get(CORS_RULES, ())
    for method, path, handler in documented_routes(app):
        doc = getattr(handler, "openapi", None)
        if not isinstance(doc, OperationDoc):
            raise LookupError(f"{method} {path} has no @operation description")
        rule = rule_for(rules, path)
        cors = _cors_headers(rule, method, app[NODE].settings.cors_max_age_s) if rule else {}
        paths.setdefault(path, {})[method.lower()] = _operation(path, doc, schemas, cors)
    spec = {
        "openapi": "3.1.0",
        "info": {"title": "livecore", "version": "0.1.0", "description": _DESCRIPTION},
        "paths": paths,
        "components": {"schemas": {"Problem": PROBLEM_SCHEMA, **schemas.found},
                       "securitySchemes": SECURITY_SCHEMES},
    }
    fillers = app.get(SCHEMA_FILLERS, {})
    for schema in schemas.found.values():
        if "x-filled-by" in schema:
            schema.update(fillers[schema["x-filled-by"]]())
    node = app[NODE]
    _fill_bounds(spec, node.settings, node.today())
    return spec


class _Schemas:
    """Component schemas of the models named so far, each under its class name (which must be unique)."""

    def __init__(self) -> None:
        self.found: dict[str, Any] = {}
        self._models: dict[str, type[BaseModel]] = {}

    def ref(self, model: type[BaseModel]) -> dict[str, str]:
        name = model.__name__
        if self._models.setdefault(name, model) is not model:
            raise LookupError(f"two models are named {name}: {model.__module__} and {self._models[name].__module__}")
        if name not in self.found:
            schema = model.model_json_schema(ref_template=_REF)
            for sub, definition in schema.pop("$defs", {}).items():
                if self.found.setdefault(sub, definition) != definition:
                    raise LookupError(f"two models named {sub} describe different things (one is in {name})")
            self.found[name] = schema
        return {"$ref": _REF.format(model=name)}

    def schema_of(self, value: type[BaseModel] | dict[str, Any]) -> dict[str, Any]:
        return self.ref(value) if isinstance(value, type) else value

    def content(self, value: type[BaseModel] | Content) -> dict[str, Any]:
        if isinstance(value, Content):
            return {media: {"schema": self.schema_of(value.schema)} for media in value.media_types}
        return {"application/json": {"schema": self.ref(value)}}


def _operation(path: str, doc: OperationDoc, schemas: _Schemas, cors: dict[str, Header]) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": doc.summary, "responses": _responses(doc, schemas, cors)}
    if doc.tag:
        op["tags"] = [doc.tag]
    if doc.security:
        unknown = set(doc.security) - set(SECURITY_SCHEMES) - {ANONYMOUS}
        if unknown:
            raise LookupError(f"{path} names unknown security schemes {sorted(unknown)}")
        op["security"] = [{name: []} if name else {} for name in doc.security]
    parameters = _path_parameters(path, doc.path)
    for where, model in (("query", doc.query), ("header", doc.headers)):
        if model is not None:
            parameters += _parameters(where, model)
    if parameters:
        op["parameters"] = parameters
    if doc.body is not None:
        op["requestBody"] = {"required": True, "content": schemas.content(doc.body)}
    return op


_ID_SCHEMA = TypeAdapter(Id).json_schema()


def _path_parameters(path: str, model: type[BaseModel] | None) -> list[dict[str, Any]]:
    names = [segment[1:-1] for segment in path.split("/") if segment.startswith("{")]
    schema = model.model_json_schema() if model is not None else {"properties": {"id": _ID_SCHEMA}}
    properties = schema.get("properties", {})
    return [{"name": name, "in": "path", "required": True, "schema": properties.get(name, {"type": "string"})}
            for name in names]


def _parameters(where: str, model: type[Parameters]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    found = []
    for name, prop in schema.get("properties", {}).items():
        parameter = {"name": name, "in": where, "required": name in required, "schema": prop}
        if "description" in prop:
            parameter["description"] = prop["description"]
        found.append(parameter)
    return found


def _responses(doc: OperationDoc, schemas: _Schemas, cors: dict[str, Header]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for code in sorted({doc.status, *doc.reply_statuses} | {c for c in doc.responses if c < 400}):
        response: dict[str, Any] = {"description": doc.responses.get(code) or HTTPStatus(code).phrase}
        if doc.reply is not None and code not in _NO_CONTENT:
            response["content"] = schemas.content(doc.reply)
        if doc.reply_headers or cors:
            response["headers"] = _headers({**doc.reply_headers, **cors})
        found[str(code)] = response
    for code in sorted(set(doc.problems) | {c for c in doc.responses if c >= 400} - set(doc.reply_statuses)):
        found[str(code)] = _problem(code, doc.problems.get(code, ()), doc.responses.get(code), cors)
    return found


def _cors_headers(rule: CorsRule, method: str, max_age_s: int) -> dict[str, Header]:
    """The headers cors.py adds to every answer on a path `rule` opens: always when it is open to any origin, else
    when the request's Origin is one it lists."""
    always = ANY in rule.origins
    origins = (ANY,) if always else tuple(sorted(rule.origins))
    found = {
        "Access-Control-Allow-Origin": Header("who may read this answer: * or the request's Origin, if listed",
                                              required=always, values=origins),
        "Access-Control-Expose-Headers": Header("the headers a page on another origin may read", required=always,
                                                values=(rule.exposed_headers,)),
    }
    if not always:
        found["Vary"] = Header("the answer depends on the request's Origin", required=False, values=("Origin",))
        if rule.credentials:
            found["Access-Control-Allow-Credentials"] = Header("the page may send cookies", required=False,
                                                               values=("true",))
    if method == "OPTIONS":
        found["Access-Control-Allow-Methods"] = Header("what a page on another origin may send here",
                                                       required=always, values=(rule.methods,) if rule.methods else ())
        found["Access-Control-Allow-Headers"] = Header("the request headers it may send", required=always,
                                                       values=(rule.request_headers,))
        found["Access-Control-Max-Age"] = Header("seconds a browser may reuse this preflight answer",
                                                 required=always, values=(str(max_age_s),))
    return found


def _problem(code: int, slugs: tuple[str, ...], text: str | None, cors: dict[str, Header]) -> dict[str, Any]:
    schema: dict[str, Any] = {"allOf": [{"$ref": _REF.format(model="Problem")}],
                              "properties": {"status": {"const": code}}}
    if slugs:
        schema["properties"]["type"] = {"enum": [f"livecore:{slug}" for slug in slugs]}
    response: dict[str, Any] = {"description": text or ", ".join(slugs) or HTTPStatus(code).phrase,
                                "content": {PROBLEM_TYPE: {"schema": schema}}}
    headers = {**_PROBLEM_HEADERS.get(code, {}), **cors}
    if headers:
        response["headers"] = _headers(headers)
    return response


def _headers(described: dict[str, Header]) -> dict[str, Any]:
    found = {}
    for name, header in described.items():
        schema: dict[str, Any] = {"type": "string"}
        if header.values:
            schema["enum"] = list(header.values)
        found[name] = {"description": header.description, "required": header.required, "schema": schema}
    return found


def _fill_bounds(node: Any, settings: Settings, today: dt.date) -> None:
    """Replace the setting and date markers of http.py in every schema under `node` with this node's values."""
    if isinstance(node, list):
        for item in node:
            _fill_bounds(item, settings, today)
        return
    if not isinstance(node, dict):
        return
    if "x-minimum-setting" in node:
        node.pop("exclusiveMinimum", None)
        node["minimum"] = getattr(settings, node["x-minimum-setting"])
    if "x-maximum-setting" in node:
        node.pop("exclusiveMaximum", None)
        node["maximum"] = getattr(settings, node["x-maximum-setting"])
    if "x-max-items-setting" in node:
        node["maxItems"] = getattr(settings, node["x-max-items-setting"])
    if node.get("x-not-after") == "today":
        node["pattern"] = dates_until(today)
    for value in node.values():
        _fill_bounds(value, settings, today)


_MONTH = "(?:0[1-9]|1[0-2])"
_DAY = "(?:0[1-9]|[12][0-9]|3[01])"


def dates_until(last: dt.date) -> str:
    """A regular expression for the YYYY-MM-DD dates from 0001-01-01 to `last` (with `format: date` ruling out
    the days a month does not have)."""
    year, month, day = f"{last.year:04d}", f"{last.month:02d}", f"{last.day:02d}"
    choices = [f"{year}-{month}-{_digits_between('01', day)}"]
    if last.month > 1:
        choices.append(f"{year}-{_digits_between('01', f'{last.month - 1:02d}')}-{_DAY}")
    if last.year > 1:
        choices.append(f"{_digits_between('0001', f'{last.year - 1:04d}')}-{_MONTH}-{_DAY}")
    return "^(?:" + "|".join(choices) + ")$"


def _digits_between(low: str, high: str) -> str:
    """A regular expression for the zero-padded numbers from `low` to `high` (both as wide as each other)."""
    if not low:
        return ""
    if low[0] == high[0]:
        return low[0] + _digits_between(low[1:], high[1:])
    rest = len(low) - 1
    if low[1:] == "0" * rest and high[1:] == "9" * rest:
        return _digit(low[0], high[0]) + "[0-9]" * rest
    parts = [low[0] + _digits_between(low[1:], "9" * rest)]
    if int(high[0]) - int(low[0]) > 1:
        parts.append(_digit(str(int(low[0]) + 1), str(int(high[0]) - 1)) + "[0-9]" * rest)
    parts.append(high[0] + _digits_between("0" * rest, high[1:]))
    return "(?:" + "|".join(parts) + ")"


def _digit(low: str, high: str) -> str:
    return low if low == high else f"[{low}-{high}]"


@operation("This document: OpenAPI 3.1 for every route, with this node's limits", tag="operations",
           reply=Content.of("application/json", schema={"type": "object", "required": ["openapi", "paths"]}),
           storage=False)
async def openapi_document(request: web.Request) -> web.Response:
    return json_response(build_spec(request.app))
