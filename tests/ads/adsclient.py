"""Helpers for the ads tests: an advertiser with a funded balance and a creative, campaigns through the HTTP API."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import time
from typing import Any

from clips import make_mp4
from feedclient import auth, post_video
from livenode import RunningNode

from ads import ADS, Ads, billing

CLIP = make_mp4(seconds=1)
BACK_S_MAX = 60.0  # a database or Valkey started again answers within this


def ads_of(node: RunningNode) -> Ads:
    return node.app[ADS]


def interest() -> str:
    return f"hobby{secrets.token_hex(4)}"  # the database is shared between tests: an interest of this test's own


async def funded_advertiser(node: RunningNode, cents: int) -> dict[str, Any]:
    """A new advertiser (who may upload videos) whose ad balance holds `cents`, credited as a payment would be."""
    advertiser = await node.signup(roles=["advertiser", "creator"], display_name="Acme Shoes")
    ads = ads_of(node)
    assert await billing.fund(node.node.pool, ads.accounts, advertiser["id"], cents,
                              f"test-{secrets.token_hex(6)}", node.node.clock.now_ms(), advertiser["id"])
    return advertiser


def campaign_body(video_id: int, *, budget_cents: int = 10_000, daily_cents: int | None = None,
                  bid: dict[str, Any] | None = None, targeting: dict[str, Any] | None = None,
                  frequency: int | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(hours=1)
    group: dict[str, Any] = {"name": "main", "bid": bid or {"kind": "cpm", "cents": 500},
                             "targeting": targeting or {},
                             "creatives": [{"video_id": video_id, "headline": "Run further",
                                            "landing_url": "https://example.com/shoes"}]}
    if frequency is not None:
        group["frequency_per_day_max"] = frequency
    return {"name": f"campaign {secrets.token_hex(3)}", "budget_daily_cents": daily_cents or budget_cents,
            "budget_lifetime_cents": budget_cents, "starts_at": start.isoformat(),
            "ends_at": (start + dt.timedelta(days=30)).isoformat(), "pacing": "asap", "ad_groups": [group]}


async def create_campaign(node: RunningNode, token: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with node.http.post(f"{node.url}/api/campaigns", json=body, headers=auth(token)) as response:
        return response.status, await response.json(content_type=None)


async def advertiser_with_campaign(node: RunningNode, **body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A funded advertiser and the only running campaign (the database is shared: earlier tests' are paused), with
    one creative."""
    await node.node.pool.execute("UPDATE ad_campaigns SET state = 'paused' WHERE state = 'active'")
    advertiser = await funded_advertiser(node, 100_000)
    video = await post_video(node, advertiser["token"], CLIP, caption="our new shoe")
    status, campaign = await create_campaign(node, advertiser["token"], campaign_body(video["id"], **body))
    assert status == 201, campaign
    return advertiser, campaign


async def send_events(node: RunningNode, token: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    async with node.http.post(f"{node.url}/api/ads/events", json={"events": events}, headers=auth(token)) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def post_events(node: RunningNode, token: str, events: list[dict[str, Any]],
                      url: str | None = None) -> tuple[int, dict[str, Any]]:
    """POST a batch of ad events (to `url`, another node, if given): the status and the answer, whatever they are."""
    async with node.http.post(f"{url or node.url}/api/ads/events", json={"events": events},
                              headers=auth(token)) as response:
        return response.status, await response.json(content_type=None)


async def post_events_until_stored(node: RunningNode, token: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """What the feed page does after a 503: send the batch again, with the same ids, until it is answered (within
    BACK_S_MAX, for a database coming back); the answer."""
    deadline = time.monotonic() + BACK_S_MAX
    while True:
        status, answer = await post_events(node, token, events)
        if status == 200:
            return answer
        assert status == 503 and time.monotonic() < deadline, (status, answer)
        await asyncio.sleep(0.2)


def ads_in(page: dict[str, Any], campaign_id: int | None = None) -> list[dict[str, Any]]:
    return [i for i in page["items"] if i["kind"] == "ad" and campaign_id in (None, i["campaign_id"])]
