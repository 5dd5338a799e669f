"""Two nodes behind one PostgreSQL and one Valkey agree about ads, each with its own in-memory inventory: a campaign
created through node A is served by node B once B has refreshed (and by neither before it starts); a viewer paging
between the two never sees an ad group more often than its daily cap; spend and counts recorded through B reach
A's pacer at its refresh, a budget spent through B stops the campaign on both and nothing is charged twice; a
campaign paused or ended through A stops on B at B's refresh; with PostgreSQL stopped while both refresh, B goes on
serving what it held and answers 503, not 500, and after recovery both hold the same and rank it the same (as does
a node started afresh); and a `livecore serve` node killed in the middle of a batch of events loses nothing it
accepted, and the page's retry on the other node counts that batch once.

The nodes share one ManualClock and refresh only when a test says so (`ads_refresh_ms` is an hour): "after B's
refresh" is a call, not a wait.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from adsclient import (
    BACK_S_MAX,
    CLIP,
    ads_in,
    ads_of,
    campaign_body,
    create_campaign,
    funded_advertiser,
    interest,
    post_events,
    post_events_until_stored,
    send_events,
)
from feedclient import auth, feed_page, feeds_of, get_json, post_video
from livenode import NodeFactory, RunningNode, Servers
from servenode import Serve, clean_env

from ads import Ads, campaigns
from ads import invariants as ad_invariants
from ads.campaigns import NewAdGroup, NewCampaign, NewCreative
from ads.targeting import Targeting
from commerce import invariants
from feeds.viewers import Viewer, load_viewer
from livecore.clock import ManualClock
from livecore.embedded import EmbeddedPostgres, EmbeddedValkey
from livecore.outage import unreachable_part

PRICE_CENTS = 100_000  # the reserve eCPM and every bid: a CPM impression that won alone costs a dollar (100 cents)
IMPRESSION_MILLICENTS = PRICE_CENTS  # an eCPM of N cents is N millicents per impression
ORGANIC_VIDEOS = 12  # a page of 12 holds two ad slots with none of the other tests' videos
SETTINGS: dict[str, Any] = {
    "ads_refresh_ms": 3_600_000, "ads_spend_post_ms": 3_600_000, "ads_settle_sweep_ms": 3_600_000,  # the tests do it
    "ads_reserve_ecpm_cents": PRICE_CENTS,
    "ads_feed_items_per_ad": 5,  # a page of 6 items has one ad slot, of 12 two
    "ads_refresh_full_ms": 60 * 3_600_000,  # each refresh reads a sixtieth (at least one) of the held campaigns again
}
# Campaigns both nodes hold that start in ten days (never served here), beside a test's own: a refresh reads one held
# campaign whole again in turn, so with these a change to the test's campaign is read as a change, not in its turn.
HELD_ELSEWHERE = 5


async def two_nodes(node_factory: NodeFactory, on: Servers | None = None) -> tuple[RunningNode, RunningNode,
                                                                                     ManualClock]:
    """Nodes A and B on one clock (starting now, so the videos posted are fresh), holding no other test's
    campaign, with organic videos enough for ad slots in both nodes' For You catalogues."""
    clock = ManualClock(time.time_ns() // 1_000_000)
    a = await node_factory(clock=clock, on=on, **SETTINGS)
    b = await node_factory(clock=clock, on=on, **SETTINGS)
    await a.node.pool.execute("UPDATE ad_campaigns SET state = 'paused' WHERE state = 'active'")
    await organic_videos(a)
    for node in (a, b):
        await feeds_of(node).refresh()
        await ads_of(node).refresh()
    return a, b, clock


async def organic_videos(node: RunningNode) -> None:
    author = await node.signup()
    for _ in range(ORGANIC_VIDEOS):
        await post_video(node, author["token"], CLIP)


async def hold_elsewhere(node: RunningNode, advertiser: dict[str, Any], clock: ManualClock) -> None:
    """HELD_ELSEWHERE campaigns of the advertiser's that start in ten days (read by each node's next refresh)."""
    video = await post_video(node, advertiser["token"], CLIP)
    starts_ms = clock.now_ms() + 10 * 24 * 3_600_000
    for _ in range(HELD_ELSEWHERE):
        group = NewAdGroup("later", "cpm", PRICE_CENTS, Targeting(), 50, [NewCreative(video["id"], "Later", None)])
        new = NewCampaign("later", 100, 100, starts_ms, starts_ms + 3_600_000, "asap", [group])
        await campaigns.create_campaign(node.node.pool, ads_of(node).accounts, advertiser["id"], new, clock.now_ms())


def clock_now(clock: ManualClock) -> dt.datetime:
    return dt.datetime.fromtimestamp(clock.now_ms() / 1000, tz=dt.UTC)


async def new_campaign(node: RunningNode, advertiser: dict[str, Any], clock: ManualClock, *,
                       budget_cents: int = 10_000, headlines: tuple[str, ...] = ("Run further",),
                       caps: tuple[int, ...] = (50,), starts_in: dt.timedelta = dt.timedelta(hours=-1),
                       targeting: dict[str, Any] | None = None) -> dict[str, Any]:
    """A CPM campaign created through `node`'s API, starting `starts_in` from the clock's now, with one ad group
    per headline (the first bidding highest) and its cap."""
    video = await post_video(node, advertiser["token"], CLIP)
    body = campaign_body(video["id"], budget_cents=budget_cents, bid={"kind": "cpm", "cents": PRICE_CENTS},
                         targeting=targeting, now=clock_now(clock) + starts_in + dt.timedelta(hours=1))
    template = body["ad_groups"][0]
    body["ad_groups"] = [
        {**template, "name": headline, "bid": {"kind": "cpm", "cents": PRICE_CENTS + 10_000 * (len(caps) - n - 1)},
         "frequency_per_day_max": cap, "creatives": [{**template["creatives"][0], "headline": headline}]}
        for n, (headline, cap) in enumerate(zip(headlines, caps, strict=True))]
    status, campaign = await create_campaign(node, advertiser["token"], body)
    assert status == 201, campaign
    return campaign


async def ads_seen(node: RunningNode, viewer: dict[str, Any], campaign_id: int | None = None,
                   limit: int = 12) -> list[dict[str, Any]]:
    """The ads (of the campaign) on one For You page of a new session of the viewer's, from `node`."""
    return ads_in(await feed_page(node, "for-you", viewer["token"], limit=limit), campaign_id)


async def set_state(node: RunningNode, advertiser: dict[str, Any], campaign_id: int, action: str) -> dict[str, Any]:
    async with node.http.post(f"{node.url}/api/campaigns/{campaign_id}/{action}",
                              headers=auth(advertiser["token"])) as response:
        assert response.status == 200, await response.text()
        return await response.json()


def what_decisions_see(ads: Ads, now_ms: int) -> dict[str, Any]:
    """A node's inventory as its decisions use it: the campaigns, each group's counts, each campaign's spend, and
    the ranking (group, eCPM) of adults and of those who may not be profiled."""
    inventory, ranking = ads.inventory, ads.decider._ranking_now
    return {"campaigns": inventory.campaigns,
            "counts": {g: inventory.counts.get(g, (0, 0)) for g in inventory.groups},
            "spend": {c: inventory.spend.of(c, now_ms) for c in inventory.campaigns},
            "ranked": [(e.group.id, e.bid.ecpm_cents) for e in ranking.ranked],
            "untargeted": [e.group.id for e in ranking.untargeted]}


async def invariants_hold(node: RunningNode) -> None:
    assert await invariants.violations(node.node.pool) == []
    assert await ad_invariants.violations(node.node.pool) == []


async def test_a_campaign_created_on_a_is_served_by_b_after_its_refresh_once_it_runs(
        node_factory: NodeFactory) -> None:
    a, b, clock = await two_nodes(node_factory)
    advertiser = await funded_advertiser(a, 100_000)
    hobby = interest()
    campaign = await new_campaign(a, advertiser, clock, starts_in=dt.timedelta(hours=1),
                                  targeting={"interests": [hobby], "regions": ["US"]})
    viewer = await b.signup(interests=[hobby])
    assert campaign["id"] in ads_of(a).inventory.campaigns  # A refreshed as it created it
    assert campaign["id"] not in ads_of(b).inventory.campaigns
    for node in (a, b):
        assert await ads_seen(node, viewer, campaign["id"]) == []  # it starts in an hour

    clock.advance(2 * 3600)
    assert await ads_seen(a, viewer, campaign["id"])  # running now
    assert await ads_seen(b, viewer, campaign["id"]) == []  # B has not read it yet

    await ads_of(b).refresh()
    served = await ads_seen(b, viewer, campaign["id"])
    assert served
    for ad in served:  # what the page labels "Sponsored by Acme Shoes", with why this viewer sees it
        assert ad["kind"] == "ad" and ad["sponsor"] == {"id": advertiser["id"], "name": "Acme Shoes"}
        assert ad["reasons"] == [f"Your interests: {hobby}", "Your region (US)"]
        assert ad["headline"] == "Run further" and ad["video"]["id"] == campaign["ad_groups"][0]["creatives"][0][
            "video_id"]
    stranger = await b.signup(interests=["knitting"])
    assert await ads_seen(b, stranger, campaign["id"]) == []


async def test_a_viewer_paging_between_the_nodes_never_sees_a_group_beyond_its_daily_cap(
        node_factory: NodeFactory) -> None:
    """One ad slot per page, pages alternating A, B, A, ...: a node that counted only its own serves would show the
    higher bidder a third time on the third page (A's second)."""
    a, b, clock = await two_nodes(node_factory)
    advertiser = await funded_advertiser(a, 100_000)
    caps = {"first": 2, "second": 3}
    campaign = await new_campaign(a, advertiser, clock, headlines=tuple(caps), caps=tuple(caps.values()))
    await ads_of(b).refresh()
    viewer = await a.signup()

    async def page_through(pages: int) -> list[tuple[str, str]]:
        shown: list[tuple[str, str]] = []
        for n in range(pages):
            name, node = (("A", a), ("B", b))[n % 2]
            shown += [(name, ad["headline"]) for ad in await ads_seen(node, viewer, campaign["id"], limit=6)]
        return shown

    shown = await page_through(8)
    assert Counter(headline for _, headline in shown) == caps  # each group up to its cap, not one more
    assert shown == [("A", "first"), ("B", "first"), ("A", "second"), ("B", "second"), ("A", "second")]

    clock.advance(24 * 3600)  # a new UTC day: the caps start again
    assert [headline for _, headline in await page_through(2)] == ["first", "first"]


async def test_spend_recorded_through_b_stops_the_campaign_on_both_at_their_refresh_and_charges_once(
        node_factory: NodeFactory) -> None:
    a, b, clock = await two_nodes(node_factory)
    advertiser = await funded_advertiser(a, 100_000)
    await hold_elsewhere(a, advertiser, clock)
    campaign = await new_campaign(a, advertiser, clock, budget_cents=300)  # three impressions
    campaign_id, group_id = campaign["id"], campaign["ad_groups"][0]["id"]
    await ads_of(b).refresh()
    viewer = await a.signup()
    served = [*await ads_seen(a, viewer, campaign_id), *await ads_seen(b, viewer, campaign_id)]
    assert len(served) == 4  # two slots a page, on each node

    def impressions(ads: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"id": f"seen-{ad['impression_id']}", "impression": ad["impression"], "kind": "impression"}
                for ad in ads]

    clicked = [{"id": "clicked", "impression": served[0]["impression"], "kind": "click"}]
    assert (await send_events(b, viewer["token"], impressions(served[:2]) + clicked))["accepted"] == 3
    now_ms = clock.now_ms()
    assert ads_of(a).inventory.spend.of(campaign_id, now_ms).total == 0  # A has not read it yet
    await ads_of(a).refresh()
    spend = ads_of(a).inventory.spend.of(campaign_id, now_ms)
    assert (spend.total, spend.today, spend.this_hour) == (2 * IMPRESSION_MILLICENTS,) * 3
    assert ads_of(a).inventory.counts[group_id] == (2, 1)  # the predicted click rate's figures
    assert await ads_seen(a, viewer, campaign_id)  # a dollar of the budget left

    assert (await send_events(b, viewer["token"], impressions(served[2:3])))["accepted"] == 1  # the budget is spent
    await ads_of(a).refresh()
    await ads_of(b).refresh()
    for node in (a, b):
        assert campaign_id not in ads_of(node).inventory.campaigns
        assert await ads_seen(node, viewer, campaign_id) == []

    again = await send_events(a, viewer["token"], impressions(served))  # three repeated, one over the budget
    assert (again["accepted"], again["duplicates"]) == (1, 3)
    await asyncio.gather(ads_of(a).post_spend(), ads_of(b).post_spend())  # both nodes post, as both would
    await asyncio.gather(ads_of(a).settle_ended(), ads_of(b).settle_ended())
    await asyncio.gather(ads_of(a).post_spend(), ads_of(b).post_spend())
    status, report = await get_json(a, f"/api/campaigns/{campaign_id}/report", advertiser["token"])
    assert status == 200 and (report["totals"]["impressions"], report["totals"]["clicks"]) == (4, 1)
    status, view = await get_json(b, f"/api/campaigns/{campaign_id}", advertiser["token"])
    assert status == 200
    assert (view["state"], view["spend_cents"], view["billed_cents"], view["returned_cents"]) == ("ended", 300, 300, 0)
    posted = await a.node.pool.fetchval(
        "SELECT coalesce(sum((details->>'cents')::bigint), 0) FROM ledger_transactions WHERE kind = 'ads_spend'"
        " AND (details->>'campaign_id')::bigint = $1", campaign_id)
    assert posted == 300
    await invariants_hold(a)


async def test_a_campaign_paused_or_ended_on_a_stops_on_b_at_its_next_refresh(node_factory: NodeFactory) -> None:
    """Each viewer sees each group once a day (cap 1) and a page has two slots: one for each campaign."""
    a, b, clock = await two_nodes(node_factory)
    advertiser = await funded_advertiser(a, 100_000)
    await hold_elsewhere(a, advertiser, clock)
    paused = await new_campaign(a, advertiser, clock, caps=(1,))
    ended = await new_campaign(a, advertiser, clock, caps=(1,))
    both = {paused["id"], ended["id"]}
    await ads_of(b).refresh()

    async def campaigns_on(node: RunningNode) -> set[int]:
        viewer = await a.signup()
        return {ad["campaign_id"] for ad in await ads_seen(node, viewer)}

    assert await campaigns_on(b) == both
    assert (await set_state(a, advertiser, paused["id"], "pause"))["state"] == "paused"
    assert (await set_state(a, advertiser, ended["id"], "end"))["state"] == "ended"
    assert await campaigns_on(a) == set()
    assert await campaigns_on(b) == both  # until B reads the change: at most ads_refresh_ms

    await ads_of(b).refresh()
    assert await campaigns_on(b) == set()
    assert not both & ads_of(b).inventory.campaigns.keys()

    assert (await set_state(a, advertiser, paused["id"], "resume"))["state"] == "active"
    await ads_of(b).refresh()
    assert await campaigns_on(b) == {paused["id"]}  # an ended campaign never comes back
    await invariants_hold(a)


async def _viewer(node: RunningNode, user_id: int) -> Viewer:
    account = await node.node.accounts.get(user_id)  # read into the node's account cache: decisions need no database
    assert account is not None
    return await load_viewer(node.node, account)


async def test_postgres_stopped_while_both_refresh_b_serves_what_it_held_and_both_converge_after(
        own_postgres: EmbeddedPostgres, own_valkey: EmbeddedValkey, node_factory: NodeFactory,
        servers: Servers) -> None:
    """On a PostgreSQL of the test's own (the session's is not stopped under the other tests)."""
    own = Servers(own_postgres.url, own_valkey.url, servers.directory)
    a, b, clock = await two_nodes(node_factory, on=own)
    advertiser = await funded_advertiser(a, 100_000)
    leader = await new_campaign(a, advertiser, clock, caps=(1000,), headlines=("leader",))
    other = await new_campaign(a, advertiser, clock, caps=(1000,), headlines=("other",))
    await ads_of(b).refresh()
    user = await a.signup()
    viewer_on_a, viewer_on_b = await _viewer(a, user["id"]), await _viewer(b, user["id"])
    ad = await ads_of(b).ad_for_slot(viewer_on_b, 5)
    assert ad is not None and ad["campaign_id"] == leader["id"]  # the lower group id wins the tie

    # A moves on before the outage, B does not read it: the leader paused through A, an impression of the other
    # (which A serves now) charged through A.
    await set_state(a, advertiser, leader["id"], "pause")
    served_by_a = await ads_of(a).ad_for_slot(viewer_on_a, 5)
    assert served_by_a is not None and served_by_a["campaign_id"] == other["id"]
    shown = [{"id": "shown", "impression": served_by_a["impression"], "kind": "impression"}]
    assert (await send_events(a, user["token"], shown))["accepted"] == 1
    held_by_b = dict(ads_of(b).inventory.campaigns)

    await asyncio.to_thread(own_postgres.stop)
    try:
        refreshes = await asyncio.gather(ads_of(a).refresh(), ads_of(b).refresh(), return_exceptions=True)
        assert [unreachable_part(r) for r in refreshes if isinstance(r, BaseException)] == ["database"] * 2
        assert ads_of(b).inventory.campaigns == held_by_b  # the last inventory it read goes on serving
        ad = await ads_of(b).ad_for_slot(viewer_on_b, 5)
        assert ad is not None and ad["campaign_id"] == leader["id"]  # as it held it
        async with b.http.get(f"{b.url}/api/feed/for-you?limit=12", headers=auth(user["token"])) as response:
            body = await response.json(content_type=None)
            assert response.status == 503, body  # the organic feed needs the database; clearly, not a 500
            assert body["type"] == "livecore:unavailable" and body["unavailable"] == "database"
            assert response.headers["Retry-After"]
        batch = [{"id": "during", "impression": ad["impression"], "kind": "impression"}]
        status, problem = await post_events(b, user["token"], batch)
        assert status == 503 and problem["unavailable"] == "database"
    finally:
        await asyncio.to_thread(own_postgres.start)

    answer = await post_events_until_stored(b, user["token"], batch)  # the page sends it again with the same ids
    assert answer == {"accepted": 1, "duplicates": 0, "refused": []}  # paused since: counted, still charged
    await asyncio.gather(ads_of(a).refresh(), ads_of(b).refresh())
    now_ms = clock.now_ms()
    seen_by_a, seen_by_b = what_decisions_see(ads_of(a), now_ms), what_decisions_see(ads_of(b), now_ms)
    assert seen_by_a == seen_by_b
    assert seen_by_b["campaigns"].keys() == {other["id"]}
    assert seen_by_b["spend"][other["id"]].total == IMPRESSION_MILLICENTS
    restarted = await node_factory(clock=clock, on=own, **SETTINGS)  # reading everything afresh: the same
    assert what_decisions_see(ads_of(restarted), now_ms) == seen_by_b
    for ads in (ads_of(a), ads_of(b)):
        choice = await ads.ad_for_slot(viewer_on_b, 5)
        assert choice is not None and choice["campaign_id"] == other["id"]
    await ads_of(a).post_spend()
    await invariants_hold(a)


async def kill_within_a_batch(killed: Serve, b: RunningNode, token: str, events: list[dict[str, Any]],
                              campaign_id: int) -> None:
    """Send the batch to the node and kill it (-9) mid-way: its transaction has begun and waits for the campaign's
    row, which a connection of the test's holds, and the row is let go only once the node is dead."""
    holder = await asyncpg.connect(b.node.settings.database_url)
    try:
        async with holder.transaction():
            await holder.execute("SELECT 1 FROM ad_campaigns WHERE id = $1 FOR UPDATE", campaign_id)
            in_flight = asyncio.create_task(post_events(b, token, events, url=killed.url))
            deadline = time.monotonic() + BACK_S_MAX
            while not await b.node.pool.fetchval(  # not the holder's: a transaction sees activity as it first read it

                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE 'INSERT INTO ad_events%'"):  # its first event's row waits on the campaign's
                assert time.monotonic() < deadline and not in_flight.done(), "the batch never reached the database"
                await asyncio.sleep(0.05)
            await asyncio.to_thread(killed.kill)
            with pytest.raises(aiohttp.ClientError):
                await in_flight  # the page never got an answer
    finally:
        await holder.close()


async def test_a_node_killed_with_events_in_flight_loses_nothing_it_accepted_and_nothing_counts_twice(
        node_factory: NodeFactory, servers: Servers, tmp_path: Path) -> None:
    """Node A is a `livecore serve` process, killed (-9) in the middle of the page's second batch of events; the page
    sends that batch again to B with the same ids. A's own clock is the system's, so B's is too."""
    env = clean_env(LIVECORE_DATABASE_URL=servers.database_url, LIVECORE_REDIS_URL=servers.redis_url,
                    LIVECORE_SEED_DEMO="no", **{f"LIVECORE_{k.upper()}": str(v) for k, v in SETTINGS.items()})
    killed = Serve(tmp_path / "a", env=env)
    try:
        b = await node_factory(**SETTINGS)
        await killed.wait_ready(b.http)
        await b.node.pool.execute("UPDATE ad_campaigns SET state = 'paused' WHERE state = 'active'")
        await organic_videos(b)
        advertiser = await funded_advertiser(b, 100_000)
        video = await post_video(b, advertiser["token"], CLIP)
        body = campaign_body(video["id"], budget_cents=300, bid={"kind": "cpm", "cents": PRICE_CENTS}, frequency=50)
        async with b.http.post(f"{killed.url}/api/campaigns", json=body, headers=auth(advertiser["token"])) as answer:
            assert answer.status == 201, await answer.text()
            campaign = await answer.json()
        await ads_of(b).refresh()
        viewer = await b.signup()
        served = [*await ads_seen(b, viewer, campaign["id"]), *await ads_seen(b, viewer, campaign["id"])]
        assert len(served) == 4
        events = [{"id": f"e{n}", "impression": ad["impression"], "kind": "impression"} for n, ad in enumerate(served)]
        events.append({"id": "clicked", "impression": served[0]["impression"], "kind": "click"})
        status, answer = await post_events(b, viewer["token"], events[:2], url=killed.url)
        assert (status, answer["accepted"]) == (200, 2)

        await kill_within_a_batch(killed, b, viewer["token"], events[2:], campaign["id"])
        answer = await send_events(b, viewer["token"], events[2:])  # the page's retry, on B
        assert answer == {"accepted": 3, "duplicates": 0, "refused": []}  # A's half-done batch counted nothing
    finally:
        killed.end()

    await ads_of(b).refresh()
    assert campaign["id"] not in ads_of(b).inventory.campaigns  # the budget was spent through both nodes
    assert await ads_seen(b, viewer, campaign["id"]) == []
    await ads_of(b).post_spend()
    status, report = await get_json(b, f"/api/campaigns/{campaign['id']}/report", advertiser["token"])
    assert status == 200
    totals = report["totals"]
    assert (totals["impressions"], totals["clicks"], totals["spend_cents"]) == (4, 1, 300)  # the fourth: free
    await invariants_hold(b)
