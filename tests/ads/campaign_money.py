"""Helpers for the tests of ended campaigns: a funded campaign on a node's clock, impressions the node signed (as its
ads stage does for a slot it served), and the advertiser's money as the ledger holds it."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from adsclient import CLIP, ads_of, campaign_body, create_campaign, funded_advertiser, send_events
from feedclient import auth, post_video
from livenode import RunningNode

FUNDS_CENTS = 100_000
PRICE_MILLICENTS = 100_000  # a dollar an impression: charges in whole cents, so the figures are easy to follow


async def running_campaign(node: RunningNode, budget_cents: int, hours: float = 30 * 24,
                           advertiser: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """An advertiser funded with FUNDS_CENTS (or the one given) and a CPM campaign of theirs running from an hour
    ago on the node's clock for `hours` more."""
    advertiser = advertiser or await funded_advertiser(node, FUNDS_CENTS)
    video = await post_video(node, advertiser["token"], CLIP)
    now = dt.datetime.fromtimestamp(node.node.clock.now_ms() / 1000, tz=dt.UTC)
    body = campaign_body(video["id"], budget_cents=budget_cents, bid={"kind": "cpm", "cents": PRICE_MILLICENTS},
                         now=now)
    body["ends_at"] = (now + dt.timedelta(hours=hours)).isoformat()
    status, campaign = await create_campaign(node, advertiser["token"], body)
    assert status == 201, campaign
    return advertiser, campaign


def impression(node: RunningNode, campaign: dict[str, Any], viewer_id: int) -> str:
    """A token for an impression of the campaign served to the viewer now, priced PRICE_MILLICENTS."""
    group = campaign["ad_groups"][0]
    _, token = ads_of(node).signer.issue(campaign["id"], group["id"], group["creatives"][0]["id"], viewer_id, "cpm",
                                         PRICE_MILLICENTS, node.node.clock.now_ms())
    return token


async def show(node: RunningNode, viewer: dict[str, Any], campaign: dict[str, Any], times: int) -> dict[str, Any]:
    """The viewer's page reports `times` impressions of the campaign: each charges PRICE_MILLICENTS (if it may)."""
    events = [{"id": secrets.token_hex(6), "impression": impression(node, campaign, viewer["id"]),
               "kind": "impression"} for _ in range(times)]
    return await send_events(node, viewer["token"], events)


async def end(node: RunningNode, advertiser: dict[str, Any], campaign_id: int) -> tuple[int, dict[str, Any]]:
    async with node.http.post(f"{node.url}/api/campaigns/{campaign_id}/end",
                              headers=auth(advertiser["token"])) as response:
        return response.status, await response.json(content_type=None)


async def money(node: RunningNode, advertiser_id: int) -> dict[str, int]:
    """The advertiser's ad balance and held budget (cents), and how many returns the ledger holds for them."""
    pool = node.node.pool
    rows = await pool.fetch("SELECT kind, balance FROM ledger_accounts WHERE owner_id = $1"
                            " AND kind IN ('ad_balance', 'ad_budget_held')", advertiser_id)
    found = {r["kind"]: r["balance"] for r in rows}
    returns = await pool.fetchval("SELECT count(*) FROM ledger_transactions WHERE kind = 'ads_budget_returned'"
                                  " AND actor_id = $1", advertiser_id)
    return {"balance": found.get("ad_balance", 0), "held": found.get("ad_budget_held", 0), "returns": returns}
