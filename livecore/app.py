"""The app factory: the one place that knows every context and wires them into a node."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import redis.asyncio as redis
from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector

import commerce
import signaling
from livecore import db, media, openapi, operations, seed
from livecore.accounts import Tokens
from livecore.accounts import routes as account_routes
from livecore.accounts.accounts import AccountCache
from livecore.accounts.tokens import shared_secret
from livecore.clock import Clock
from livecore.config import Settings
from livecore.http import Content, Problem, operation, problem_middleware
from livecore.node import NODE, Node
from livecore.streams import routes as stream_routes

log = logging.getLogger("livecore.app")

STATIC_DIR = Path(__file__).resolve().parent.parent / "webui" / "static"


def build_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    """A node's aiohttp application; PostgreSQL and Redis are connected when it starts."""
    app = web.Application(
        middlewares=[operations.http_metrics_middleware, problem_middleware], client_max_size=256 * 1024
    )
    app.cleanup_ctx.append(_node_context(settings, clock or Clock()))
    account_routes.add_routes(app)
    stream_routes.add_routes(app)
    signaling.add_routes(app)
    commerce.add_routes(app)
    media.add_routes(app)
    operations.add_routes(app)
    app.router.add_get("/api/openapi.json", openapi.openapi_document)
    app.router.add_get("/{path:.*}", static_page)
    return app


@operation("The browser pages and their assets (webui/static); / is the live directory", tag="pages",
           reply=Content.of("*/*"), problems={404: ["not-found"]})
async def static_page(request: web.Request) -> web.FileResponse:
    relative = request.match_info["path"] or "index.html"
    path = (STATIC_DIR / relative).resolve()
    if not path.is_relative_to(STATIC_DIR) or not path.is_file():
        raise Problem(404, "not-found", f"there is no page or API at /{relative}")
    return web.FileResponse(path, headers={"Cache-Control": "no-cache"})


def _node_context(settings: Settings, clock: Clock):  # type: ignore[no-untyped-def]
    async def context(app: web.Application) -> AsyncIterator[None]:
        pool = await db.create_pool(settings.database_url, settings.db_pool_size_max)
        # A blocking pool: a storm of joins or leaves waits for a connection instead of failing the request.
        pool_redis = redis.BlockingConnectionPool.from_url(
            settings.redis_url, max_connections=settings.redis_connections_max, timeout=settings.redis_wait_s_max,
            health_check_interval=30,
        )
        client = redis.Redis(connection_pool=pool_redis)
        try:
            await db.migrate(pool)
            secret = settings.secret or await shared_secret(pool)
            registry = CollectorRegistry()
            ProcessCollector(registry=registry)
            accounts = AccountCache(pool, clock, settings.account_cache_ms, settings.account_cache_entries_max)
            node = Node(settings, clock, pool, client, Tokens(secret, settings.token_ttl_s, clock), registry, accounts)
            app[NODE] = node
            operations.install_http_metrics(app)
            plane = signaling.Plane(node)
            node.rooms = plane
            app[signaling.PLANE] = plane
            await plane.start()
            money = commerce.Commerce(node)
            app[commerce.COMMERCE] = money
            node.gifts = money
            await money.start()
            app[media.MEDIA] = media_plane = media.MediaPlane(node)
            node.media = media_plane
            await media_plane.start()
            if settings.seed_demo:
                await seed.seed_demo(node)
            log.info("node %s ready at %s", settings.node_id, settings.public_url)
            yield
            await media_plane.stop()
            await money.stop()
            await plane.stop()
        finally:
            await client.aclose()
            await pool_redis.aclose()
            try:
                # asyncpg waits for every connection to come back; a stuck holder must not stop a shutdown.
                await asyncio.wait_for(pool.close(), settings.shutdown_s_max)
            except TimeoutError:
                log.warning("PostgreSQL connections still busy after %d s; terminating them", settings.shutdown_s_max)
                pool.terminate()

    return context
