"""Cross-origin access (CORS) by path prefix: which other sites' pages may call which part of the node.

Each context says which of its paths are open to which origins (`CorsRule`); one middleware answers preflights and
adds the headers a browser needs to every answer, errors included, so a page on another origin can read a
problem+json refusal too. A path no rule opens stays same-origin: no CORS header is added, and a preflight gets the
route's own answer (a 405 where the route has no OPTIONS).

aiohttp-cors was not used: it refuses a resource that has its own OPTIONS handler, which WHIP and WHEP need (their
OPTIONS answers what they accept even without CORS), and it answers 403 to an OPTIONS without an Origin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

from livecore.http import Handler

ANY = "*"


def parse_origins(raw: str) -> frozenset[str]:
    """A comma-separated origin list setting: `*`, or origins like `https://shop.example` (no path)."""
    return frozenset(origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip())


@dataclass(frozen=True)
class CorsRule:
    """Paths under `prefixes` are open to `origins` (`*` any, then never with cookies)."""

    prefixes: tuple[str, ...]
    origins: frozenset[str]
    methods: str | None = None  # what preflights allow; None: the route's own methods
    request_headers: str = "Authorization, Content-Type"
    exposed_headers: str = "Location, Link, ETag"
    credentials: bool = False  # send cookies: only ever for listed origins

    def allowed_origin(self, origin: str | None) -> str | None:
        """The Access-Control-Allow-Origin value for a request from `origin`, or None when it is not allowed."""
        if ANY in self.origins:
            return ANY
        if origin and origin in self.origins:
            return origin
        return None


CORS_RULES = web.AppKey("cors_rules", tuple)  # the node's rules, for its API description


def rule_for(rules: Sequence[CorsRule], path: str) -> CorsRule | None:
    """The rule that applies to `path`: the first that opens a matching prefix to some origin."""
    return next((rule for rule in rules if rule.origins and path.startswith(rule.prefixes)), None)


def cors_middleware(rules: Sequence[CorsRule], max_age_s: int) -> Middleware:
    """The middleware for `rules` (the first rule whose prefix matches a path applies)."""

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        rule = rule_for(rules, request.path)
        allow_origin = rule.allowed_origin(request.headers.get("Origin")) if rule else None
        if rule is None or allow_origin is None:
            return await handler(request)
        preflight = request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
        if preflight and not _has_options_route(request):
            response: web.StreamResponse = web.Response(status=204)
        else:
            response = await handler(request)
        if response.prepared:
            return response  # a WebSocket or a streamed answer: its headers are gone
        headers = response.headers
        headers["Access-Control-Allow-Origin"] = allow_origin
        if allow_origin != ANY:
            headers.add("Vary", "Origin")
            if rule.credentials:
                headers["Access-Control-Allow-Credentials"] = "true"
        headers["Access-Control-Expose-Headers"] = rule.exposed_headers
        if request.method == "OPTIONS":
            headers["Access-Control-Allow-Methods"] = rule.methods or _route_methods(request)
            headers["Access-Control-Allow-Headers"] = rule.request_headers
            headers["Access-Control-Max-Age"] = str(max_age_s)
        return response

    return cors


def _has_options_route(request: web.Request) -> bool:
    route = request.match_info.route
    return route.resource is not None and route.method == "OPTIONS"


def _route_methods(request: web.Request) -> str:
    """The methods the requested path answers (from the 405 aiohttp prepared, or the matched resource)."""
    exception = request.match_info.http_exception
    if isinstance(exception, web.HTTPMethodNotAllowed):
        methods = set(exception.allowed_methods)
    else:
        resource = request.match_info.route.resource
        methods = {route.method for route in resource} if resource is not None else set()
    return ", ".join(sorted(methods | {"OPTIONS"}))
