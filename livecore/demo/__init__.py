"""The live demo: the seeded demo creator goes live with a generated test picture and tone, and a few demo viewers
chat, like and send gifts. It runs beside a node (`livecore serve --demo`) and uses only the node's public
interfaces, WHIP, the room WebSocket and the HTTP API, like any user would.

Public: `Demo`, `DemoStream`, `Pace` (how often the demo viewers chat, like and send gifts).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import aiohttp

from livecore.demo.audience import Audience, Pace
from livecore.demo.client import NodeClient
from livecore.demo.publisher import Publisher
from livecore.demo.stage import DemoStream, Stage

__all__ = ["Demo", "DemoStream", "Pace"]

log = logging.getLogger("livecore.demo")


class Demo:
    """The demo publisher and viewers, talking to the node at `base_url`; `on_live` hears of each stream it goes
    live on."""

    def __init__(self, base_url: str, on_live: Callable[[DemoStream], None] | None = None,
                 pace: Pace | None = None) -> None:
        self.base_url = base_url
        self.pace = pace or Pace()
        self.stage = Stage(on_live)
        self._http: aiohttp.ClientSession | None = None
        self.publisher: Publisher | None = None
        self.audience: Audience | None = None

    async def start(self) -> None:
        """Start going live and the viewers, in the background; returns at once."""
        log.info("demo: starting against %s", self.base_url)
        self._http = aiohttp.ClientSession()
        client = NodeClient(self.base_url, self._http)
        self.publisher = Publisher(client, self.stage)
        self.audience = Audience(client, self.stage, pace=self.pace)
        self.publisher.start()
        self.audience.start()

    async def stop(self) -> None:
        """Stop the viewers, end the demo stream (WHIP DELETE) and close the connections."""
        if self.audience is not None:
            await self.audience.stop()
        if self.publisher is not None:
            await self.publisher.stop()
        if self._http is not None:
            await self._http.close()
        log.info("demo: stopped")
