"""A print-on-demand fulfilment simulator: a small aiohttp service with its own order store (SQLite), the
Printful-style order lifecycle with realistic, time-accelerated delays, random failures when asked, and signed
callbacks (Standard Webhooks). livecore starts it beside its embedded servers when no fulfilment provider URL is
configured; `python -m fulfilment_sim` runs it alone.

It imports nothing from livecore: it is the outside world the node talks to over HTTP.
"""

from fulfilment_sim.app import SimSettings, build_app

__all__ = ["SimSettings", "build_app"]
