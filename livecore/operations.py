"""Operator endpoints: liveness, readiness, Prometheus metrics, and the request metrics middleware."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pydantic import BaseModel, ConfigDict

from livecore.http import Content, Handler, json_response, operation
from livecore.node import NODE

READY_TIMEOUT_S = 2.0
HTTP_METRICS = web.AppKey("http_metrics", tuple)


class Health(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["ok"]
    node: str


class Checks(BaseModel):
    model_config = ConfigDict(extra="forbid")
    postgres: str
    redis: str


class Readiness(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ready: bool
    checks: Checks


@operation("Liveness: the process is serving", tag="operations", reply=Health, storage=False)
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "node": request.app[NODE].settings.node_id})


@operation("Readiness: PostgreSQL and Redis answer", tag="operations", reply=Readiness, reply_statuses=(503,),
           storage=False,
           responses={503: "A dependency is down (its check says how)"})
async def readyz(request: web.Request) -> web.Response:
    node = request.app[NODE]
    checks = {}
    for name, probe in (("postgres", node.pool.fetchval("SELECT 1")), ("redis", node.redis.ping())):
        try:
            await asyncio.wait_for(probe, READY_TIMEOUT_S)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"failing: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)


@operation("Prometheus metrics in the text exposition format", tag="operations", reply=Content.of("text/plain"),
           storage=False)
async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[NODE].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def install_http_metrics(app: web.Application) -> None:
    registry = app[NODE].registry
    app[HTTP_METRICS] = (
        Counter("livecore_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry),
        Histogram("livecore_http_request_seconds", "HTTP request latency", ["route"], registry=registry),
    )


@web.middleware
async def http_metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    response = await handler(request)
    counter, latency = request.app[HTTP_METRICS]
    resource = request.match_info.route.resource
    route = resource.canonical if resource else "unmatched"
    counter.labels(request.method, route, str(response.status)).inc()
    if response.status != 101:
        latency.labels(route).observe(time.perf_counter() - started)
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
