"""The simulator's world: its clock (accelerated wall time, or moved by hand), its catalogue and shipping rates,
the steps due, and the signed callbacks it delivers (Standard Webhooks, through the `standardwebhooks` package)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import os
import random
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from standardwebhooks.webhooks import Webhook

from fulfilment_sim import lifecycle
from fulfilment_sim.store import Order, Store

log = logging.getLogger("fulfilment_sim")

CATALOGUE = Path(__file__).resolve().parent.parent / "commerce" / "merch" / "base_items.json"
STEP_BATCH_MAX = 500  # orders moved per query; the pass queries again until nothing is due
DELIVERY_BATCH_MAX = 200  # callbacks sent per pass


@dataclass(frozen=True)
class SimSettings:
    data_dir: Path
    webhook_secret: str = ""  # whsec_...; empty: one is made and kept in the store
    api_key: str = ""  # when set, requests need `Authorization: Bearer <api_key>`
    time_acceleration: int = 3600  # simulated seconds per real second
    manual_clock: bool = False  # time moves only by POST /v1/simulate/advance (tests)
    failure_percent: int = 0  # chance that an order fails when production starts
    random_seed: int | None = None
    production_start_s: int = 2 * 3600
    production_s: int = 2 * 24 * 3600
    transit_s: int = 4 * 24 * 3600
    tick_ms: int = 200  # how often the simulator looks for due steps and callbacks (real time)
    delivery_timeout_s: int = 10
    delivery_attempts_max: int = 12
    delivery_backoff_s_max: int = 600  # the longest wait between two attempts to deliver one callback
    origin_country: str = "US"
    exit_with_parent: bool = False  # stop when the process that started it is gone (a node that crashed)

    def delays(self) -> lifecycle.Delays:
        return lifecycle.Delays(self.production_start_s, self.production_s, self.transit_s)


class SimClock:
    """Simulated milliseconds: wall time sped up `acceleration` times from where the simulator last stopped (the
    simulated world pauses while it is down), or a clock moved only by hand."""

    def __init__(self, store: Store, acceleration: int, manual: bool) -> None:
        self._store = store
        self._manual = manual
        self._acceleration = acceleration
        saved = store.meta("sim_now_ms")
        self._origin_sim_ms = int(saved) if saved else wall_ms()
        self._origin_wall_ms = wall_ms()

    def now_ms(self) -> int:
        if self._manual:
            return self._origin_sim_ms
        return self._origin_sim_ms + (wall_ms() - self._origin_wall_ms) * self._acceleration

    def advance(self, seconds: int) -> None:
        if not self._manual:
            raise lifecycle.NotAllowed("the clock moves by itself; start the simulator with --manual-clock")
        self._origin_sim_ms += seconds * 1000

    def save(self) -> None:
        self._store.set_meta("sim_now_ms", str(self.now_ms()))


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def load_catalogue(path: Path = CATALOGUE) -> dict[str, int]:
    """The base cost of every variant, by the variant ids the shop uses (<item>-<size>[-<colour>])."""
    raw = json.loads(path.read_text())
    costs: dict[str, int] = {}
    for item in raw["items"]:
        for size in item["sizes"]:
            for colour in item["colours"]:
                parts = [item["id"], size["size"], colour["colour"] or ""]
                costs["-".join(_slug(p) for p in parts if p)] = size["base_cost_cents"]
    return costs


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# Standard shipping, by zone: (first item, each further item) in cents, and (min, max) days in transit.
RATES = {"domestic": (475, 225, 3, 5), "international": (1199, 399, 7, 14)}


def shipping_rate(origin_country: str, country: str, quantity: int) -> dict[str, Any]:
    zone = "domestic" if country == origin_country else "international"
    first, further, days_min, days_max = RATES[zone]
    return {"id": "STANDARD", "name": f"Standard ({zone})", "rate_cents": first + further * (quantity - 1),
            "currency": "usd", "min_delivery_days": days_min, "max_delivery_days": days_max}


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


class Callbacks:
    """Signed callbacks to the shop's webhook URL, kept in the store until delivered: retried with a capped
    exponential backoff, given up after `delivery_attempts_max` tries."""

    def __init__(self, store: Store, settings: SimSettings, secret: str) -> None:
        self._store = store
        self._settings = settings
        self._signer = Webhook(secret)
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._settings.delivery_timeout_s))

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()

    def event(self, order: Order, now_ms: int) -> tuple[str, str, str, int]:
        """(webhook id, type, body, when to send it) announcing the order's current state."""
        event_type = f"order.{order.status}"
        body = json.dumps({"type": event_type, "timestamp": _iso(now_ms), "data": {"order": {
            "id": order.id, "external_id": order.external_id, "status": order.status, "seq": order.seq,
            "tracking": order.tracking, "reason": order.reason}}})
        return "msg_" + secrets.token_urlsafe(16), event_type, body, wall_ms()

    def signed_headers(self, msg_id: str, body: str) -> dict[str, str]:
        now = dt.datetime.now(tz=dt.UTC)
        return {"webhook-id": msg_id, "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": self._signer.sign(msg_id, now, body), "content-type": "application/json"}

    async def deliver(self, everything: bool = False) -> int:
        """Send the callbacks that are due (`everything`: all undelivered ones, retry schedule or not); how many
        were delivered. Paused deliveries keep them in the store."""
        url = self._store.meta("webhook_url")
        if not url or self._store.meta("webhook_paused") == "1" or self._session is None:
            return 0
        async with self._lock:  # one delivery pass at a time, so a callback is not sent twice at once
            rows = self._store.webhooks_due(None if everything else wall_ms(), DELIVERY_BATCH_MAX)
            delivered = 0
            for row in rows:
                if await self._send(url, row["msg_id"], row["body"]):
                    self._store.delivered(row["msg_id"], wall_ms())
                    delivered += 1
                else:
                    attempts = row["attempts"] + 1
                    wait_s = min(2 ** attempts, self._settings.delivery_backoff_s_max)
                    self._store.failed_delivery(row["msg_id"], wall_ms() + wait_s * 1000,
                                                attempts >= self._settings.delivery_attempts_max)
            return delivered

    async def _send(self, url: str, msg_id: str, body: str) -> bool:
        assert self._session is not None
        try:
            async with self._session.post(url, data=body.encode(), headers=self.signed_headers(msg_id, body)) as r:
                if 200 <= r.status < 300:
                    return True
                log.warning("callback %s to %s answered %d: %s", msg_id, url, r.status, (await r.text())[:200])
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("callback %s to %s failed: %s", msg_id, url, exc)
        return False


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat().replace("+00:00", "Z")


class World:
    """The store, the clock, the catalogue and the callbacks of one simulator."""

    def __init__(self, settings: SimSettings) -> None:
        self.settings = settings
        self.store = Store(settings.data_dir / "fulfilment_sim.sqlite3")
        self.clock = SimClock(self.store, settings.time_acceleration, settings.manual_clock)
        self.catalogue = load_catalogue()
        self.delays = settings.delays()
        self.rng = random.Random(settings.random_seed)
        secret = settings.webhook_secret or self.store.meta("webhook_secret") or new_secret()
        self.store.set_meta("webhook_secret", secret)
        self.callbacks = Callbacks(self.store, settings, secret)

    def record(self, order: Order) -> None:
        """Store the order's new state with the callback that announces it."""
        self.store.save_transition(order, self.callbacks.event(order, self.clock.now_ms()))

    def run_due_steps(self) -> int:
        """Move every order whose next step is due by the simulated clock; how many steps were taken."""
        taken = 0
        while True:
            now_ms = self.clock.now_ms()
            due = self.store.due(now_ms, STEP_BATCH_MAX)
            for order in due:
                step_ms = order.due_ms or now_ms  # steps happen when they were due, in order
                lifecycle.next_step(order, step_ms, self.delays, self.settings.failure_percent, self.rng)
                self.record(order)
            taken += len(due)
            if not due:  # a step may make the next one due at once (the clock moved far): look again
                if taken:
                    self.clock.save()
                return taken
