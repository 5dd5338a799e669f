"""Valkey killed (-9) while ads are decided and measured: the For You feed answers without ads or with a clear 503,
the ads stage itself leaves its slots empty instead of failing, and events (kept in PostgreSQL only) are neither lost
nor counted twice, before, during and after the outage. PostgreSQL stopped under events: a clear 503 with
Retry-After, and the page's retry with the same ids counts each event once when it is back."""

from __future__ import annotations

import asyncio

from adsclient import CLIP, ads_in, ads_of, advertiser_with_campaign, post_events, post_events_until_stored, send_events
from feedclient import auth, feed_page, feeds_of, get_json, post_video
from livenode import NodeFactory, Servers

from ads import invariants as ad_invariants
from commerce import invariants
from feeds.viewers import load_viewer
from livecore.embedded import EmbeddedPostgres, EmbeddedValkey


async def test_valkey_killed_during_decisions_and_events(own_valkey: EmbeddedValkey, node_factory: NodeFactory,
                                                         servers: Servers) -> None:
    node = await node_factory(on=Servers(servers.database_url, own_valkey.url, servers.directory), redis_wait_s_max=1)
    author = await node.signup()
    for _ in range(12):
        await post_video(node, author["token"], CLIP)
    await feeds_of(node).refresh()
    advertiser, campaign = await advertiser_with_campaign(node, bid={"kind": "cpm", "cents": 100_000}, frequency=50)
    viewer = await node.signup()
    ad = ads_in(await feed_page(node, "for-you", viewer["token"], limit=12), campaign["id"])[0]
    before = [{"id": "shown", "impression": ad["impression"], "kind": "impression"}]
    assert (await send_events(node, viewer["token"], before))["accepted"] == 1

    assert own_valkey.process is not None
    own_valkey.process.kill()  # -9
    own_valkey.process.wait()

    async with node.http.get(f"{node.url}/api/feed/for-you?limit=12", headers=auth(viewer["token"])) as response:
        body = await response.json(content_type=None)
        if response.status == 200:
            assert ads_in(body) == []
        else:
            assert response.status == 503 and body["type"] == "livecore:unavailable" and body["unavailable"] == "bus"
            assert response.headers["Retry-After"]
    account = await node.node.accounts.get(viewer["id"])
    assert account is not None
    assert await ads_of(node).ad_for_slot(await load_viewer(node.node, account), 5) is None  # empty, not an error

    during = [*before, {"id": "in-view", "impression": ad["impression"], "kind": "viewable"},
              {"id": "clicked", "impression": ad["impression"], "kind": "click"}]
    assert await send_events(node, viewer["token"], during) == {"accepted": 2, "duplicates": 1, "refused": []}
    assert await send_events(node, viewer["token"], during) == {"accepted": 0, "duplicates": 3, "refused": []}

    own_valkey.start()
    assert await send_events(node, viewer["token"], during) == {"accepted": 0, "duplicates": 3, "refused": []}
    status, report = await get_json(node, f"/api/campaigns/{campaign['id']}/report", advertiser["token"])
    assert status == 200
    assert (report["totals"]["impressions"], report["totals"]["viewable"], report["totals"]["clicks"]) == (1, 1, 1)
    await ads_of(node).post_spend()
    assert await invariants.violations(node.node.pool) == []
    assert await ad_invariants.violations(node.node.pool) == []
    again = await feed_page(node, "for-you", viewer["token"], limit=12)  # ads come back with the bus
    assert ads_in(again, campaign["id"])


async def test_postgres_stopped_under_events_answers_503_and_the_retry_counts_once(
        own_postgres: EmbeddedPostgres, node_factory: NodeFactory, servers: Servers) -> None:
    node = await node_factory(on=Servers(own_postgres.url, servers.redis_url, servers.directory))
    author = await node.signup()
    for _ in range(12):
        await post_video(node, author["token"], CLIP)
    await feeds_of(node).refresh()
    advertiser, campaign = await advertiser_with_campaign(node, bid={"kind": "cpm", "cents": 100_000}, frequency=50)
    viewer = await node.signup()
    ad = ads_in(await feed_page(node, "for-you", viewer["token"], limit=12), campaign["id"])[0]
    batch = [{"id": kind, "impression": ad["impression"], "kind": kind} for kind in ("impression", "viewable")]

    await asyncio.to_thread(own_postgres.stop)
    status, problem = await post_events(node, viewer["token"], batch)
    assert status == 503 and problem["type"] == "livecore:unavailable" and problem["unavailable"] == "database"
    await asyncio.to_thread(own_postgres.start)
    answer = await post_events_until_stored(node, viewer["token"], batch)  # the page sends it again with the same ids
    assert answer == {"accepted": 2, "duplicates": 0, "refused": []}
    assert (await post_events(node, viewer["token"], batch))[1] == {"accepted": 0, "duplicates": 2, "refused": []}
    status, report = await get_json(node, f"/api/campaigns/{campaign['id']}/report", advertiser["token"])
    assert status == 200 and (report["totals"]["impressions"], report["totals"]["viewable"]) == (1, 1)
    await ads_of(node).post_spend()
    assert await invariants.violations(node.node.pool) == []
    assert await ad_invariants.violations(node.node.pool) == []
