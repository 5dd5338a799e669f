"""An ended campaign gives its unspent budget back to the advertiser's ad balance, exactly once: ended by its
advertiser (once, twice, racing its own charges, spend posting and the sweep), by its schedule (after the grace for
late events) and by its budget running out; after that it charges nothing. Every ledger invariant holds after each."""

from __future__ import annotations

import asyncio

from adsclient import ads_of, send_events
from campaign_money import FUNDS_CENTS, end, impression, money, running_campaign, show
from feedclient import auth, get_json
from livenode import NodeFactory, RunningNode

from ads import invariants as ad_invariants
from commerce import invariants
from livecore.clock import ManualClock

NO_SWEEP = {"ads_settle_sweep_ms": 3_600_000}  # the tests run the sweep themselves


async def _node(node_factory: NodeFactory) -> RunningNode:
    return await node_factory(clock=ManualClock(), **NO_SWEEP)


async def _campaign(node: RunningNode, advertiser: dict, campaign_id: int) -> dict:
    status, view = await get_json(node, f"/api/campaigns/{campaign_id}", advertiser["token"])
    assert status == 200, view
    return view


async def _invariants_hold(node: RunningNode) -> None:
    assert await invariants.violations(node.node.pool) == []
    assert await ad_invariants.violations(node.node.pool) == []


async def test_ending_gives_the_unspent_budget_back_once_and_charges_nothing_after(
        node_factory: NodeFactory) -> None:
    node = await _node(node_factory)
    advertiser, campaign = await running_campaign(node, budget_cents=10_000)
    viewer = await node.signup()
    served_before_end = impression(node, campaign, viewer["id"])
    assert (await show(node, viewer, campaign, 3))["accepted"] == 3  # 300 cents charged, not yet posted

    status, ended = await end(node, advertiser, campaign["id"])
    assert status == 200, ended
    assert (ended["state"], ended["spend_cents"], ended["billed_cents"], ended["returned_cents"]) == (
        "ended", 300, 300, 9_700)
    assert ended["settled_at"] is not None
    assert await money(node, advertiser["id"]) == {"balance": FUNDS_CENTS - 300, "held": 0, "returns": 1}

    status, again = await end(node, advertiser, campaign["id"])  # asked again: the campaign as it is
    assert status == 200 and again == ended
    await ads_of(node).settle_ended()
    await ads_of(node).post_spend()
    assert await money(node, advertiser["id"]) == {"balance": FUNDS_CENTS - 300, "held": 0, "returns": 1}

    late = [{"id": "late", "impression": served_before_end, "kind": "impression"}]
    assert (await send_events(node, viewer["token"], late))["accepted"] == 1  # counted in reports, charged nothing
    assert (await _campaign(node, advertiser, campaign["id"]))["spend_cents"] == 300
    async with node.http.post(f"{node.url}/api/campaigns/{campaign['id']}/resume",
                              headers=auth(advertiser["token"])) as response:
        assert (response.status, (await response.json())["type"]) == (409, "livecore:campaign-ended")
    await _invariants_hold(node)


async def test_ending_while_charges_spend_and_sweeps_race_moves_money_once(node_factory: NodeFactory) -> None:
    node = await _node(node_factory)
    ads = ads_of(node)
    viewers = [await node.signup() for _ in range(3)]
    for _ in range(3):
        advertiser, campaign = await running_campaign(node, budget_cents=5_000)
        await show(node, viewers[0], campaign, 4)
        await asyncio.gather(
            *(show(node, viewer, campaign, 5) for viewer in viewers), ads.post_spend(),
            end(node, advertiser, campaign["id"]), end(node, advertiser, campaign["id"]), ads.settle_ended(),
            *(show(node, viewer, campaign, 2) for viewer in viewers), ads.post_spend())
        view = await _campaign(node, advertiser, campaign["id"])
        assert view["state"] == "ended" and view["settled_at"] is not None
        assert view["spend_cents"] == view["billed_cents"] >= 400  # what ran before the end, posted in full
        assert view["returned_cents"] == 5_000 - view["billed_cents"]
        assert await money(node, advertiser["id"]) == {
            "balance": FUNDS_CENTS - view["billed_cents"], "held": 0, "returns": 1}
        await _invariants_hold(node)


async def test_the_sweep_settles_campaigns_whose_schedule_or_budget_ran_out(node_factory: NodeFactory) -> None:
    node = await _node(node_factory)
    clock = node.node.clock
    assert isinstance(clock, ManualClock)
    ads = ads_of(node)
    viewer = await node.signup()
    advertiser, by_schedule = await running_campaign(node, budget_cents=10_000, hours=1)
    _, by_budget = await running_campaign(node, budget_cents=300, advertiser=advertiser)
    await show(node, viewer, by_schedule, 2)
    await show(node, viewer, by_budget, 4)  # the fourth finds the budget spent: charged nothing
    served_before_end = [impression(node, by_schedule, viewer["id"]) for _ in range(2)]

    await ads.settle_ended()
    budget_view = await _campaign(node, advertiser, by_budget["id"])
    assert (budget_view["state"], budget_view["billed_cents"], budget_view["returned_cents"]) == ("ended", 300, 0)
    assert (await _campaign(node, advertiser, by_schedule["id"]))["settled_at"] is None

    clock.advance(3600)  # the schedule is over; events of impressions served before it still charge a while
    late = [{"id": "late-1", "impression": served_before_end[0], "kind": "impression"}]
    assert (await send_events(node, viewer["token"], late))["accepted"] == 1
    await ads.settle_ended()
    assert (await _campaign(node, advertiser, by_schedule["id"]))["settled_at"] is None

    clock.advance(node.node.settings.ads_settle_after_s)
    await ads.settle_ended()
    view = await _campaign(node, advertiser, by_schedule["id"])
    assert (view["state"], view["billed_cents"], view["returned_cents"]) == ("ended", 300, 9_700)
    after = [{"id": "late-2", "impression": served_before_end[1], "kind": "impression"}]
    assert (await send_events(node, viewer["token"], after))["accepted"] == 1
    assert (await _campaign(node, advertiser, by_schedule["id"]))["spend_cents"] == 300
    await ads.settle_ended()
    assert await money(node, advertiser["id"]) == {"balance": FUNDS_CENTS - 600, "held": 0, "returns": 1}
    await _invariants_hold(node)
