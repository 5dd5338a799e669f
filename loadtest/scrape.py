"""A node's own figures from its Prometheus `/metrics`: CPU seconds, resident memory, slow closes, drops."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

WANTED = {
    "process_cpu_seconds_total": "cpu_s",
    "process_resident_memory_bytes": "rss_bytes",
    "livecore_slow_consumer_closes_total": "slow_closes",
    "livecore_lossy_events_dropped_total": "lossy_dropped",
    "livecore_room_events_delivered_total": "events_out",
    "livecore_ws_connections": "connections",
}
TIMEOUT_S = 2.0


def read_metrics(text: str) -> dict[str, float]:
    """The WANTED samples of a text exposition, summed over their labels."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = WANTED.get(sample.name)
            if name is not None:
                found[name] = found.get(name, 0.0) + float(sample.value)
    return found


async def scrape(session: aiohttp.ClientSession, node_url: str) -> dict[str, float]:
    """One node's figures; {} when it does not answer in time (a node under load may not)."""
    try:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
        async with session.get(f"{node_url}/metrics", timeout=timeout) as response:
            if response.status != 200:
                return {}
            return read_metrics(await response.text())
    except (aiohttp.ClientError, TimeoutError):
        return {}
