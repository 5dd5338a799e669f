"""The app factory: the one place that knows every context and wires them into a node."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector

import ads
import commerce
import editor
import feeds
import signaling
import webui
from ads import marketplace
from editor.demo import seed_sounds
from feeds.demo_videos import seed_videos
from livecore import db, media, openapi, operations, redisclient, seed
from livecore.accounts import Tokens
from livecore.accounts import routes as account_routes
from livecore.accounts.accounts import AccountCache
from livecore.accounts.tokens import shared_secret
from livecore.clock import Clock
from livecore.config import Settings
from livecore.cors import CORS_RULES, CorsRule, cors_middleware, parse_origins
from livecore.heap import GcMetrics
from livecore.http import RETRY_AFTER_S, problem_middleware
from livecore.node import NODE, Node
from livecore.streams import routes as stream_routes

log = logging.getLogger("livecore.app")


def build_app(settings: Settings, clock: Clock | None = None) -> web.Application:
    """A node's aiohttp application; PostgreSQL and Redis are connected when it starts."""
    cors_rules = (*media.cors_rules(settings),
                  CorsRule(("/api/",), parse_origins(settings.api_cors_origins), credentials=True))
    app = web.Application(
        middlewares=[operations.http_metrics_middleware, cors_middleware(cors_rules, settings.cors_max_age_s),
                     problem_middleware],
        client_max_size=256 * 1024,
    )
    app[CORS_RULES] = cors_rules
    app[RETRY_AFTER_S] = settings.unavailable_retry_after_s
    app.cleanup_ctx.append(_node_context(settings, clock or Clock()))
    app.on_shutdown.append(_close_room_sockets)
    account_routes.add_routes(app)
    stream_routes.add_routes(app)
    signaling.add_routes(app)
    commerce.add_routes(app)
    feeds.add_routes(app)
    ads.add_routes(app)
    marketplace.add_routes(app)
    editor.add_routes(app)
    editor.add_edit_routes(app)
    media.add_routes(app)
    operations.add_routes(app)
    app.router.add_get("/api/openapi.json", openapi.openapi_document)
    webui.add_routes(app)
    return app


async def _close_room_sockets(app: web.Application) -> None:
    """A room socket's handler returns only when its socket closes, and a stopping server waits for running
    handlers: close the sockets first, or a node with a browser watching takes its whole shutdown timeout."""
    if signaling.PLANE in app:
        app[signaling.PLANE].close_connections("node shutting down")


def _node_context(settings: Settings, clock: Clock):  # type: ignore[no-untyped-def]
    async def context(app: web.Application) -> AsyncIterator[None]:
        # Each part is stopped in reverse order, also when a later part fails to start (nothing is left open).
        async with contextlib.AsyncExitStack() as parts:
            pool = await db.create_pool(settings.database_url, settings.db_pool_size_max)
            parts.push_async_callback(_close_pool, pool, settings.shutdown_s_max)
            # A blocking pool: a storm of joins or leaves waits for a connection instead of failing the request.
            client = redisclient.connect(settings.redis_url, settings.redis_connections_max,
                                         settings.redis_wait_s_max, health_check_interval=30)
            parts.push_async_callback(client.aclose)
            await db.migrate(pool)
            secret = settings.secret or await shared_secret(pool)
            registry = CollectorRegistry()
            ProcessCollector(registry=registry)
            gc_metrics = GcMetrics(registry)
            gc_metrics.start()
            parts.callback(gc_metrics.stop)
            accounts = AccountCache(pool, clock, settings.account_cache_ms, settings.account_cache_entries_max)
            node = Node(settings, clock, pool, client, Tokens(secret, settings.token_ttl_s, clock), registry, accounts)
            app[NODE] = node
            operations.install_http_metrics(app)
            plane = signaling.Plane(node)
            node.rooms = plane
            app[signaling.PLANE] = plane
            await plane.start()
            parts.push_async_callback(plane.stop)
            money = commerce.Commerce(node)
            app[commerce.COMMERCE] = money
            node.gifts = money
            node.shop = money
            await money.start()
            parts.push_async_callback(money.stop)
            app[feeds.FEEDS] = videos = feeds.Feeds(node)
            parts.push_async_callback(videos.stop)
            await videos.start()
            app[ads.ADS] = adverts = ads.Ads(node)
            parts.push_async_callback(adverts.stop)
            await adverts.start()
            videos.set_ad_stage(adverts.ad_for_slot, settings.ads_feed_items_per_ad)
            app[marketplace.MARKETPLACE] = market = marketplace.Marketplace(node, money, videos)
            parts.push_async_callback(market.stop)
            await market.start()
            app[media.MEDIA] = media_plane = media.MediaPlane(node)
            node.media = media_plane
            parts.push_async_callback(media_plane.stop)  # safe before start: closes whatever start got to
            await media_plane.start()
            app[editor.EDITOR] = studio = editor.Editor(node, videos)
            parts.push_async_callback(studio.stop)
            await studio.start()
            app[editor.RENDERS] = renders = editor.Renders(node, videos, studio.sounds, media_plane.link)
            parts.push_async_callback(renders.stop)
            await renders.start()
            if settings.seed_demo:
                await seed.seed_demo(node)
                creator_id = await seed.demo_account_id(node, seed.DEMO_CREATOR.username)
                videos.in_background(seed_videos(videos, creator_id), "feeds-demo-videos")
                videos.in_background(seed_sounds(studio, creator_id), "editor-demo-sounds")
            log.info("node %s ready at %s", settings.node_id, settings.public_url)
            yield

    return context


async def _close_pool(pool: asyncpg.Pool, wait_s: int) -> None:
    try:
        # asyncpg waits for every connection to come back; a stuck holder must not stop a shutdown.
        await asyncio.wait_for(pool.close(), wait_s)
    except TimeoutError:
        log.warning("PostgreSQL connections still busy after %d s; terminating them", wait_s)
        pool.terminate()
