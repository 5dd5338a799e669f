"""HTTP routes for ads: campaigns (create, read, list, pause, resume, report), the ad balance, ad events."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import Field

from ads import billing, campaigns, events, reports, schemas
from ads.campaigns import NewAdGroup, NewCampaign, NewCreative
from ads.impressions import ImpressionError
from ads.service import Ads
from ads.targeting import Targeting
from livecore.accounts import Account
from livecore.accounts.session import require_account
from livecore.http import Parameters, Problem, json_response, operation, parse_body, parse_query, path_id
from livecore.node import NODE

ADS: web.AppKey[Ads] = web.AppKey("ads")
_CAMPAIGN_404 = {404: ["campaign-not-found"]}


class ReportQuery(Parameters):
    period: Literal["hour", "day"] = Field(default="hour", description="one row per hour or per UTC day")


async def _advertiser(request: web.Request) -> Account:
    account = await require_account(request)
    if "advertiser" not in account.roles:
        raise Problem(403, "not-an-advertiser", "only advertiser accounts run campaigns; sign up as an advertiser")
    return account


def _new_campaign(body: schemas.CampaignIn, frequency_default: int) -> NewCampaign:
    if body.ends_at <= body.starts_at:
        raise Problem(400, "invalid-field", "ends_at: must be after starts_at", field="ends_at")
    if body.budget_daily_cents > body.budget_lifetime_cents:
        raise Problem(400, "invalid-field", "budget_daily_cents: cannot be above budget_lifetime_cents",
                      field="budget_daily_cents")
    groups = [NewAdGroup(
        g.name or f"Ad group {n + 1}", g.bid.kind, g.bid.cents,
        Targeting(tuple(g.targeting.age_bands), tuple(r.upper() for r in g.targeting.regions),
                  tuple(g.targeting.languages), tuple(i.lower().lstrip("#") for i in g.targeting.interests)),
        g.frequency_per_day_max or frequency_default,
        [NewCreative(c.video_id, c.headline, c.landing_url) for c in g.creatives])
        for n, g in enumerate(body.ad_groups)]
    return NewCampaign(body.name, body.budget_daily_cents, body.budget_lifetime_cents,
                       int(body.starts_at.timestamp() * 1000), int(body.ends_at.timestamp() * 1000), body.pacing,
                       groups)


@operation("Create a campaign with its ad groups (bid, targeting, frequency cap) and creatives; its lifetime budget "
           "is held from your ad balance", status=201, auth=True, tag="ads", body=schemas.CampaignIn,
           reply=schemas.CampaignView,
           problems={400: ["invalid-creative"], 402: ["insufficient-funds"], 403: ["not-an-advertiser"]})
async def create_campaign(request: web.Request) -> web.Response:
    ads = request.app[ADS]
    account = await _advertiser(request)
    body = await parse_body(request, schemas.CampaignIn)
    new = _new_campaign(body, ads.node.settings.ads_frequency_per_day_default)
    campaign_id = await campaigns.create_campaign(ads.node.pool, ads.accounts, account.id, new,
                                                  ads.node.clock.now_ms())
    await ads.refresh()  # this node serves it at once; the others within ads_refresh_ms
    return json_response(await campaigns.get_campaign(ads.node.pool, campaign_id, account.id), status=201)


@operation("Your campaigns, newest first", auth=True, tag="ads", reply=schemas.CampaignList,
           problems={403: ["not-an-advertiser"]})
async def list_campaigns(request: web.Request) -> web.Response:
    node = request.app[NODE]
    account = await _advertiser(request)
    items = await campaigns.list_campaigns(node.pool, account.id, node.settings.ads_campaigns_listed_max)
    return json_response({"items": items})


@operation("One of your campaigns", auth=True, tag="ads", reply=schemas.CampaignView,
           problems={403: ["not-an-advertiser"], **_CAMPAIGN_404})
async def get_campaign(request: web.Request) -> web.Response:
    account = await _advertiser(request)
    campaign_id = path_id(request, "campaign-not-found", "campaign")
    return json_response(await campaigns.get_campaign(request.app[NODE].pool, campaign_id, account.id))


def _state_handler(state: str, summary: str):  # type: ignore[no-untyped-def]
    @operation(summary, auth=True, tag="ads", reply=schemas.CampaignView,
               problems={403: ["not-an-advertiser"], 409: ["campaign-ended"], **_CAMPAIGN_404})
    async def handler(request: web.Request) -> web.Response:
        ads = request.app[ADS]
        account = await _advertiser(request)
        campaign_id = path_id(request, "campaign-not-found", "campaign")
        view = await campaigns.set_state(ads.node.pool, campaign_id, account.id, state)
        await ads.refresh()
        return json_response(view)

    return handler


@operation("End a campaign for good: it is in no auction and charges nothing from now on, and its unspent budget goes "
           "back to your ad balance, once (asking again answers the campaign as it is)", auth=True, tag="ads",
           reply=schemas.CampaignView, problems={403: ["not-an-advertiser"], **_CAMPAIGN_404})
async def end_campaign(request: web.Request) -> web.Response:
    ads = request.app[ADS]
    account = await _advertiser(request)
    campaign_id = path_id(request, "campaign-not-found", "campaign")
    await ads.end_campaign(campaign_id, account.id)
    return json_response(await campaigns.get_campaign(ads.node.pool, campaign_id, account.id))


pause_campaign = _state_handler("paused", "Pause a campaign: it is in no auction until resumed")
resume_campaign = _state_handler("active", "Resume a paused campaign")


@operation("A campaign's report: impressions, viewable, quartiles, clicks, CTR, spend and eCPM, in total and per "
           "hour or day", auth=True, tag="ads", reply=schemas.CampaignReport, query=ReportQuery,
           problems={403: ["not-an-advertiser"], **_CAMPAIGN_404})
async def campaign_report(request: web.Request) -> web.Response:
    node = request.app[NODE]
    account = await _advertiser(request)
    query = parse_query(request, ReportQuery)
    campaign_id = path_id(request, "campaign-not-found", "campaign")
    await campaigns.get_campaign(node.pool, campaign_id, account.id)  # 404 unless it is yours
    return json_response(await reports.campaign_report(node.pool, campaign_id, query.period))


@operation("Your ad balance: prepaid and held for campaigns", auth=True, tag="ads", reply=schemas.AdBalance,
           problems={403: ["not-an-advertiser"]})
async def ad_balance(request: web.Request) -> web.Response:
    account = await _advertiser(request)
    return json_response(await billing.balances(request.app[NODE].pool, account.id))


@operation("Credit an advertiser's prepaid ad balance for a payment received (admins; once per reference)",
           auth=True, tag="ads", body=schemas.AdFundsIn, reply=schemas.AdFunded,
           problems={403: ["not-an-admin"], 404: ["user-not-found"]})
async def fund_advertiser(request: web.Request) -> web.Response:
    ads = request.app[ADS]
    account = await require_account(request)
    if "admin" not in account.roles:
        raise Problem(403, "not-an-admin", "only admins credit ad balances")
    body = await parse_body(request, schemas.AdFundsIn)
    advertiser = await ads.node.accounts.get(body.advertiser_id)
    if advertiser is None or "advertiser" not in advertiser.roles:
        raise Problem(404, "user-not-found", f"there is no advertiser {body.advertiser_id}", field="advertiser_id")
    credited = await billing.fund(ads.node.pool, ads.accounts, advertiser.id, body.cents, body.reference,
                                  ads.node.clock.now_ms(), account.id)
    return json_response({"credited": credited, **await billing.balances(ads.node.pool, advertiser.id)})


@operation("Ad events from the feed page: impression, viewable (at least 50% of the player for at least 2 s), "
           "quartiles, click; each event id, and each impression's kind, counts once; answered once stored (with the "
           "batches of other requests, in one transaction)", auth=True, tag="ads", body=schemas.AdEventBatch,
           reply=schemas.AdEventAnswer, problems={503: ["ads-events-busy"]})
async def record_events(request: web.Request) -> web.Response:
    ads = request.app[ADS]
    account = await require_account(request)
    batch = await parse_body(request, schemas.AdEventBatch)
    limit = ads.node.settings.ads_events_per_batch_max
    if len(batch.events) > limit:
        raise Problem(400, "invalid-field", f"events: at most {limit} in one batch (ads_events_per_batch_max)",
                      field="events")
    now_ms = ads.node.clock.now_ms()
    valid, refused = [], []
    for e in batch.events:
        try:
            impression = ads.signer.verify(e.impression, now_ms)
        except ImpressionError:
            refused.append(e.id)
            continue
        if impression.user_id != account.id:
            refused.append(e.id)
            continue
        valid.append(events.Event(e.id, impression, e.kind, now_ms))
    recorded = await ads.record_events(account.id, valid) if valid else events.Recorded(0, 0, [])
    ads.metrics.events.labels(result="refused").inc(len(refused))
    return json_response({"accepted": recorded.accepted, "duplicates": recorded.duplicates, "refused": refused})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/campaigns", create_campaign)
    app.router.add_get("/api/campaigns", list_campaigns)
    app.router.add_get("/api/campaigns/{id}", get_campaign)
    app.router.add_post("/api/campaigns/{id}/pause", pause_campaign)
    app.router.add_post("/api/campaigns/{id}/resume", resume_campaign)
    app.router.add_post("/api/campaigns/{id}/end", end_campaign)
    app.router.add_get("/api/campaigns/{id}/report", campaign_report)
    app.router.add_get("/api/ads/balance", ad_balance)
    app.router.add_post("/api/ads/funds", fund_advertiser)
    app.router.add_post("/api/ads/events", record_events)
