"""Campaigns over real HTTP: the budget held on the ledger, ads in the For You feed labelled with who paid and why,
never a targeted ad to a minor, events counted once, the report, spend posted to the ledger with its invariants."""

from __future__ import annotations

import secrets

from adsclient import (
    CLIP,
    ads_in,
    ads_of,
    advertiser_with_campaign,
    campaign_body,
    create_campaign,
    funded_advertiser,
    interest,
    send_events,
)
from feedclient import auth, feed_page, feeds_of, get_json, post_video
from livenode import RunningNode

from ads import invariants as ad_invariants
from commerce import invariants


async def _feed_with_videos(node: RunningNode, count: int = 12) -> None:
    """Enough organic videos that a For You page has ad slots."""
    author = await node.signup()
    for _ in range(count):
        await post_video(node, author["token"], CLIP)
    await feeds_of(node).refresh()


async def _ads_seen(node: RunningNode, token: str, campaign_id: int, pages: int = 3) -> list[dict]:
    seen = []
    for _ in range(pages):
        seen += ads_in(await feed_page(node, "for-you", token, limit=12), campaign_id)
    return seen


async def test_a_campaign_holds_its_budget_and_only_its_advertiser_sees_it(node: RunningNode) -> None:
    advertiser = await funded_advertiser(node, 5_000)
    video = await post_video(node, advertiser["token"], CLIP)
    status, problem = await create_campaign(node, advertiser["token"], campaign_body(video["id"], budget_cents=9_000))
    assert (status, problem["type"]) == (402, "livecore:insufficient-funds")
    status, campaign = await create_campaign(node, advertiser["token"], campaign_body(video["id"], budget_cents=4_000))
    assert status == 201, campaign
    assert campaign["state"] == "active" and campaign["ad_groups"][0]["creatives"][0]["video_id"] == video["id"]
    assert await get_json(node, "/api/ads/balance", advertiser["token"]) == (
        200, {"balance_cents": 1_000, "held_cents": 4_000})
    other = await funded_advertiser(node, 100)
    status, _ = await get_json(node, f"/api/campaigns/{campaign['id']}", other["token"])
    assert status == 404
    status, problem = await create_campaign(node, other["token"], campaign_body(video["id"], budget_cents=50))
    assert (status, problem["type"]) == (400, "livecore:invalid-creative")  # not their video
    viewer = await node.signup()
    status, problem = await create_campaign(node, viewer["token"], campaign_body(video["id"]))
    assert (status, problem["type"]) == (403, "livecore:not-an-advertiser")
    status, listed = await get_json(node, "/api/campaigns", advertiser["token"])
    assert [c["id"] for c in listed["items"]] == [campaign["id"]]
    assert await invariants.violations(node.node.pool) == []
    assert await ad_invariants.violations(node.node.pool) == []


async def test_targeted_ads_reach_matching_adults_with_reasons_and_never_minors(node: RunningNode) -> None:
    hobby = interest()
    await _feed_with_videos(node)
    advertiser, campaign = await advertiser_with_campaign(node, targeting={"interests": [hobby],
                                                                           "age_bands": ["25-34", "35-44"]})
    adult = await node.signup(birth_date="1992-05-01", interests=[hobby])
    seen = await _ads_seen(node, adult["token"], campaign["id"])
    assert seen, "a matching adult gets the campaign's ad"
    ad = seen[0]
    assert ad["sponsor"] == {"id": advertiser["id"], "name": "Acme Shoes"}
    assert any(hobby in r for r in ad["reasons"]) and any("Your age" in r for r in ad["reasons"])
    minor = await node.signup(birth_date="2012-01-01", interests=[hobby])
    assert await _ads_seen(node, minor["token"], campaign["id"]) == []
    stranger = await node.signup(birth_date="1992-05-01", interests=["knitting"])
    assert await _ads_seen(node, stranger["token"], campaign["id"]) == []


async def test_untargeted_ads_may_reach_minors_and_pausing_stops_a_campaign(node: RunningNode) -> None:
    await _feed_with_videos(node)
    advertiser, campaign = await advertiser_with_campaign(node, bid={"kind": "cpm", "cents": 100_000}, frequency=50)
    minor = await node.signup(birth_date="2012-01-01")
    seen = await _ads_seen(node, minor["token"], campaign["id"])
    assert seen and all(ad["reasons"] == ["Shown to everyone: not based on your profile"] for ad in seen)
    async with node.http.post(f"{node.url}/api/campaigns/{campaign['id']}/pause",
                              headers=auth(advertiser["token"])) as response:
        assert response.status == 200 and (await response.json())["state"] == "paused"
    assert await _ads_seen(node, minor["token"], campaign["id"], pages=1) == []
    async with node.http.post(f"{node.url}/api/campaigns/{campaign['id']}/resume",
                              headers=auth(advertiser["token"])) as response:
        assert (await response.json())["state"] == "active"
    assert await _ads_seen(node, minor["token"], campaign["id"], pages=1)


async def test_events_count_once_and_spend_reaches_the_ledger(node: RunningNode) -> None:
    await _feed_with_videos(node)
    advertiser, campaign = await advertiser_with_campaign(node, bid={"kind": "cpm", "cents": 100_000}, frequency=50)
    viewer = await node.signup()
    ad = (await _ads_seen(node, viewer["token"], campaign["id"], pages=1))[0]
    token = ad["impression"]
    first = [{"id": "e1", "impression": token, "kind": "impression"},
             {"id": "e2", "impression": token, "kind": "viewable"},
             {"id": "e3", "impression": token, "kind": "click"}]
    assert await send_events(node, viewer["token"], first) == {"accepted": 3, "duplicates": 0, "refused": []}
    again = [*first, {"id": "e4", "impression": token, "kind": "impression"}]  # a retry, and the same kind anew
    assert await send_events(node, viewer["token"], again) == {"accepted": 0, "duplicates": 4, "refused": []}
    other = await node.signup()
    forged = [{"id": "x1", "impression": token, "kind": "click"},
              {"id": "x2", "impression": token[:-4] + "AAAA", "kind": "click"}]
    assert await send_events(node, other["token"], forged) == {"accepted": 0, "duplicates": 0,
                                                               "refused": ["x1", "x2"]}
    status, report = await get_json(node, f"/api/campaigns/{campaign['id']}/report", advertiser["token"])
    assert status == 200
    totals = report["totals"]
    assert (totals["impressions"], totals["viewable"], totals["clicks"]) == (1, 1, 1)
    assert totals["ctr"] == 1.0
    # One impression won alone at the reserve: charged the reserve eCPM, in millicents per impression.
    reserve = node.node.settings.ads_reserve_ecpm_cents
    assert totals["spend_cents"] == reserve / 1000 and totals["ecpm_cents"] == reserve
    assert len(report["rows"]) == 1 and report["rows"][0]["impressions"] == 1
    await ads_of(node).post_spend()
    assert await invariants.violations(node.node.pool) == []
    assert await ad_invariants.violations(node.node.pool) == []


async def test_spend_is_posted_in_whole_cents_exactly_once(node: RunningNode) -> None:
    await _feed_with_videos(node)
    advertiser, campaign = await advertiser_with_campaign(node, bid={"kind": "cpm", "cents": 100_000},
                                                          frequency=1000)
    ads = ads_of(node)
    viewers = [await node.signup() for _ in range(3)]
    for viewer in viewers:
        for ad in await _ads_seen(node, viewer["token"], campaign["id"], pages=4):
            await send_events(node, viewer["token"], [{"id": secrets.token_hex(4), "impression": ad["impression"],
                                                       "kind": "impression"}])
        await ads.post_spend()
    await ads.post_spend()
    status, view = await get_json(node, f"/api/campaigns/{campaign['id']}", advertiser["token"])
    assert status == 200 and view["billed_cents"] == view["spend_cents"] > 0
    assert await invariants.violations(node.node.pool) == []
    assert await ad_invariants.violations(node.node.pool) == []
