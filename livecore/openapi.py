"""`GET /api/openapi.json`: OpenAPI 3.1 built from the routes and the `@operation` on each handler."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from livecore.http import json_response, operation

_PROBLEM = {"description": "An error as application/problem+json", "content": {
    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def documented_routes(app: web.Application) -> list[tuple[str, str, Any]]:
    """(method, path, handler) for every route the node serves, static files excepted."""
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
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Problem": {
        "type": "object", "required": ["type", "title", "status", "detail"],
        "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                       "status": {"type": "integer"}, "detail": {"type": "string"}},
    }}
    for method, path, handler in documented_routes(app):
        doc = getattr(handler, "openapi", None)
        if doc is None:
            raise LookupError(f"{method} {path} has no @operation description")
        paths.setdefault(path, {})[method.lower()] = _operation(path, doc, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "livecore", "version": "0.1.0",
                 "description": "Live streaming and live commerce: accounts, streams, rooms, money."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"},
                                "cookie": {"type": "apiKey", "in": "cookie", "name": "livecore_session"}},
        },
    }


def _operation(path: str, doc: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {str(doc["status"]): {"description": "Success"}}
    responses.update({str(code): {"description": text} for code, text in doc["responses"].items()})
    responses["4XX"] = _PROBLEM
    op: dict[str, Any] = {"summary": doc["summary"], "responses": responses}
    if doc["tag"]:
        op["tags"] = [doc["tag"]]
    if doc["auth"]:
        op["security"] = [{"bearer": []}, {"cookie": []}]
    params = [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]
    if params:
        op["parameters"] = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                            for p in params]
    model = doc["body"]
    if model is not None:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        op["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}
    return op


@operation("This document: OpenAPI 3.1 for every route", tag="operations")
async def openapi_document(request: web.Request) -> web.Response:
    return json_response(build_spec(request.app))
