"""PostgreSQL out from under the settling of ended campaigns (on a PostgreSQL of the test's own): the answer to one
settlement's COMMIT lost on the wire, then the server stopped while the sweep and an advertiser's end run. Each
refused step is an outage (503 `livecore:unavailable` over HTTP), never a 500; once the server is back the sweep
finishes what is left, and every campaign's unspent budget has come back exactly once."""

from __future__ import annotations

from adsclient import ads_of
from campaign_money import FUNDS_CENTS, end, money, running_campaign, show
from commitcut import commit_cutter, lost_commit_then_database_stopped
from livenode import NodeFactory, Servers

from ads import invariants as ad_invariants
from commerce import invariants
from livecore.clock import ManualClock
from livecore.embedded import EmbeddedPostgres

BUDGET_CENTS = 2_000


async def test_a_sweep_cut_off_by_postgres_finishes_when_it_is_back_and_returns_each_budget_once(
    own_postgres: EmbeddedPostgres, node_factory: NodeFactory, servers: Servers
) -> None:
    async with commit_cutter(own_postgres.url) as cutter:
        node = await node_factory(clock=ManualClock(), on=Servers(cutter.url, servers.redis_url, servers.directory),
                                  ads_settle_sweep_ms=3_600_000)
        clock = node.node.clock
        assert isinstance(clock, ManualClock)
        ads = ads_of(node)
        viewer = await node.signup()
        advertiser, first = await running_campaign(node, BUDGET_CENTS, hours=1)
        campaigns = [first] + [(await running_campaign(node, BUDGET_CENTS, hours=1, advertiser=advertiser))[1]
                               for _ in range(2)]
        _, ended_by_hand = await running_campaign(node, BUDGET_CENTS, advertiser=advertiser)
        for n, campaign in enumerate([*campaigns, ended_by_hand], 1):
            await show(node, viewer, campaign, n)  # n dollars charged, not yet posted
        clock.advance(3600 + node.node.settings.ads_settle_after_s)  # three schedules over, grace passed

        async with lost_commit_then_database_stopped(cutter, f"ads-return:{first['id']}", ads.settle_ended,
                                                     own_postgres):
            status, problem = await end(node, advertiser, ended_by_hand["id"])
            assert status == 503 and problem["type"] == "livecore:unavailable", problem
            assert problem["unavailable"] == "database"

        assert await ads.settle_ended() == 2  # the first was settled by the commit whose answer was lost
        assert await ads.settle_ended() == 0
        status, ended = await end(node, advertiser, ended_by_hand["id"])  # the advertiser's retry
        assert status == 200 and ended["returned_cents"] == BUDGET_CENTS - 400, ended
        status, again = await end(node, advertiser, ended_by_hand["id"])
        assert status == 200 and again == ended

        returned = await node.node.pool.fetch(
            "SELECT id, billed_cents, returned_cents FROM ad_campaigns WHERE advertiser_id = $1 ORDER BY id",
            advertiser["id"])
        assert [(r["billed_cents"], r["returned_cents"]) for r in returned] == [
            (n * 100, BUDGET_CENTS - n * 100) for n in range(1, 5)]
        assert await money(node, advertiser["id"]) == {"balance": FUNDS_CENTS - 1_000, "held": 0, "returns": 4}
        assert await invariants.violations(node.node.pool) == []
        assert await ad_invariants.violations(node.node.pool) == []
