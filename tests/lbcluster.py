"""A cluster as an operator runs one: `livecore serve` nodes sharing the test PostgreSQL and Valkey behind nginx
(the README's configuration), every node's `--public-url` nginx's. Tests drive it only through nginx; they read
each node's /metrics directly, to see what happened where."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from livenode import Servers, unique_username
from nginxproxy import Nginx
from prometheus_client.parser import text_string_to_metric_families
from servenode import Serve, clean_env

from livecore.embedded import free_port
from livecore.media.cluster import session_node


@dataclass
class LbCluster:
    nodes: list[Serve]
    proxies: list[Nginx]  # the first is the load balancer at every node's public URL
    http: aiohttp.ClientSession

    @property
    def nginx(self) -> Nginx:
        return self.proxies[0]

    @property
    def url(self) -> str:
        return self.nginx.url

    def node(self, node_id: str) -> Serve:
        return next(node for node in self.nodes if node.node_id == node_id)

    def node_of_session(self, location: str) -> Serve:
        """The node holding the WHIP/WHEP session at `location` (its id names the node)."""
        node_id = session_node(location.rstrip("/").rsplit("/", 1)[-1])
        assert node_id is not None, location
        return self.node(node_id)

    async def steer_next_request_to(self, node: Serve) -> None:
        """Round-robin over two nodes: ask /healthz (which names its node) until it is not `node`; the next request
        then goes to `node`."""
        for _ in range(3):
            async with self.http.get(f"{self.url}/healthz") as response:
                if (await response.json())["node"] != node.node_id:
                    return
        raise AssertionError("nginx does not alternate between the nodes")

    async def signup(self) -> dict[str, Any]:
        body = {"username": unique_username("lb"), "password": "correct horse battery", "birth_date": "1990-01-01",
                "region": "US", "roles": ["viewer", "creator"]}
        async with self.http.post(f"{self.url}/api/accounts", json=body) as response:
            assert response.status == 201, await response.text()
            return await response.json()

    async def create_stream(self, token: str, title: str = "behind nginx") -> dict[str, Any]:
        async with self.http.post(f"{self.url}/api/streams", json={"title": title},
                                  headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 201, await response.text()
            return await response.json()

    async def stream(self, stream_id: int) -> dict[str, Any]:
        async with self.http.get(f"{self.url}/api/streams/{stream_id}") as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def metric(self, node: Serve, name: str, **labels: str) -> float:
        """A sample of `name` from a node's own /metrics (0 when it has none)."""
        async with self.http.get(f"{node.url}/metrics") as response:
            text = await response.text()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return sample.value
        return 0.0


StartCluster = Callable[..., Awaitable[LbCluster]]


@contextlib.asynccontextmanager
async def cluster_starter(servers: Servers, directory: Path, http: aiohttp.ClientSession
                          ) -> AsyncIterator[StartCluster]:
    """`await start(nodes=2, routes=None, internal_urls=None, **settings)`: `nodes` nodes behind nginx.

    `routes` lists, per nginx, the indexes of the nodes it sends requests to (default: one nginx, all nodes); the
    first is every node's public URL. `internal_urls` sets some nodes' internal URL by index (`{route0}`,
    `{route1}`... stand for the nginx URLs). Other settings are LIVECORE_ settings by name (presence_ttl_ms=...).
    Everything started is stopped on exit."""
    started_nodes: list[Serve] = []
    started_proxies: list[Nginx] = []

    async def start(nodes: int = 2, routes: list[list[int]] | None = None,
                    internal_urls: dict[int, str] | None = None, **settings: Any) -> LbCluster:
        routes = routes or [list(range(nodes))]
        ports = [free_port() for _ in routes]
        route_urls = {f"route{i}": f"http://127.0.0.1:{port}" for i, port in enumerate(ports)}
        env = {f"LIVECORE_{name.upper()}": str(value) for name, value in settings.items()}
        members = []
        for index in range(nodes):
            node_env = dict(env)
            if internal_urls and index in internal_urls:
                node_env["LIVECORE_INTERNAL_URL"] = internal_urls[index].format(**route_urls)
            node_port = free_port()
            members.append(Serve(
                directory / f"node-{node_port}", env=clean_env(
                    LIVECORE_DATABASE_URL=servers.database_url, LIVECORE_REDIS_URL=servers.redis_url,
                    LIVECORE_SEED_DEMO="no", LIVECORE_PUBLIC_URL=route_urls["route0"], **node_env),
                port=node_port))
        started_nodes.extend(members)
        await asyncio.gather(*(member.wait_ready(http) for member in members))
        proxies = []
        for route, port in zip(routes, ports, strict=True):
            proxies.append(Nginx(directory / f"nginx-{port}", [f"127.0.0.1:{members[i].port}" for i in route], port))
            started_proxies.append(proxies[-1])
        return LbCluster(members, proxies, http)

    try:
        yield start
    finally:
        for proxy in started_proxies:
            proxy.stop()
        for node in started_nodes:
            if node.process.poll() is None:
                node.stop()
