"""HTTP routes of the creator marketplace: listing, search, creator cards and offers."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from ads.marketplace import listing, offers, schemas, search
from ads.marketplace.audience import AGE_BANDS
from ads.marketplace.service import Marketplace
from commerce.requests import Keyed, keyed_body
from livecore.accounts.session import require_account
from livecore.http import (
    BIGINT_MAX,
    NO_NUL,
    Id,
    Parameters,
    Problem,
    json_response,
    maximum_setting,
    operation,
    parse_body,
    parse_query,
    path_id,
)

MARKETPLACE: web.AppKey[Marketplace] = web.AppKey("marketplace")
CURSOR = r"^[A-Za-z0-9_-]{1,512}$"
REGION = r"^[A-Za-z]{2}$"
INTEREST = r"^[a-z0-9_-]{1,40}$"
_ADVERTISERS = {403: ["not-an-advertiser", "rule-adults-only"]}


class MarketplaceListing(BaseModel):
    listed: bool = Field(description="true: list me (18+, above the thresholds); false: take me out of search")


class CreatorSearch(Parameters):
    followers_min: int = Field(default=0, ge=0, le=BIGINT_MAX)
    engagement_rate_min: float = Field(default=0, ge=0, le=100, description="percent")
    median_views_min: int = Field(default=0, ge=0, le=BIGINT_MAX)
    age_band: Literal[AGE_BANDS] | None = None  # type: ignore[valid-type]
    age_band_share_min: float = Field(default=0, ge=0, le=100, description="percent of followers in age_band")
    region: str | None = Field(default=None, pattern=REGION, description="a region followers are in (shown on "
                                                                         "the card)")
    region_share_min: float = Field(default=0, ge=0, le=100, description="percent of followers in region")
    interest: str | None = Field(default=None, pattern=INTEREST, description="an interest shown on the card")
    sort: search.Sort = "followers"
    cursor: str | None = Field(default=None, pattern=CURSOR, description="next_cursor of the page before (opaque)")
    limit: int = Field(default=20, ge=1, json_schema_extra=maximum_setting("marketplace_page_items_max"))


class NewOfferBody(Keyed):
    creator_id: Id
    brief: str = Field(min_length=1, pattern=NO_NUL, json_schema_extra=maximum_setting("offer_brief_chars_max"),
                       description="what the video should be")
    price_cents: int = Field(ge=1, json_schema_extra=maximum_setting("offer_price_cents_max"),
                             description="paid from the advertiser's coins at the gift rate when accepted")
    due_date: dt.date


class OfferDelivery(BaseModel):
    video_id: Id = Field(description="the creator's own ready video made for the offer")


class OfferList(Parameters):
    role: Literal["creator", "advertiser"] = Field(description="creator: offers received; advertiser: sent")
    before: int | None = Field(default=None, ge=1, le=BIGINT_MAX, description="next_before of the page before")
    limit: int = Field(default=20, ge=1, json_schema_extra=maximum_setting("marketplace_page_items_max"))


def _market(request: web.Request) -> Marketplace:
    return request.app[MARKETPLACE]


def _check_limit(market: Marketplace, limit: int) -> None:
    limit_max = market.node.settings.marketplace_page_items_max
    if limit > limit_max:
        raise Problem(400, "invalid-field", f"limit: at most {limit_max} (marketplace_page_items_max)",
                      field="limit")


@operation("List yourself in the creator marketplace (18+, above marketplace_followers_min and "
           "marketplace_recent_videos_min) or take yourself out; your card as computed now", auth=True,
           tag="marketplace", body=MarketplaceListing, reply=schemas.ListingView,
           problems={403: ["not-a-creator", "rule-adults-only"], 409: ["below-thresholds"]})
async def put_listing(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await parse_body(request, MarketplaceListing)
    market = _market(request)
    if body.listed:
        return json_response({"listed": True, "card": await listing.opt_in(market, account)})
    return json_response({"listed": False, "card": await listing.opt_out(market, account)})


@operation("Whether you are listed in the creator marketplace, and your card (null if you were never listed)",
           auth=True, tag="marketplace", reply=schemas.ListingView)
async def get_listing(request: web.Request) -> web.Response:
    account = await require_account(request)
    return json_response(await listing.own(_market(request), account))


@operation("Search listed creators by their cards (filters on followers, engagement, views and audience shares; "
           "one sort; cursor pages); advertisers only", auth=True, tag="marketplace", query=CreatorSearch,
           reply=schemas.CreatorPage, problems={400: ["bad-cursor"], **_ADVERTISERS})
async def search_creators(request: web.Request) -> web.Response:
    account = await require_account(request)
    market = _market(request)
    offers.require_advertiser(account, market.node.today())
    q = parse_query(request, CreatorSearch)
    _check_limit(market, q.limit)
    filters = search.Filters(
        followers_min=q.followers_min, engagement_rate_min=q.engagement_rate_min / 100,
        median_views_min=q.median_views_min, age_band=q.age_band, age_band_share_min=q.age_band_share_min / 100,
        region=q.region.upper() if q.region else None, region_share_min=q.region_share_min / 100,
        interest=q.interest, sort=q.sort)
    return json_response(await search.search(market.node.pool, filters, q.cursor, q.limit,
                                             market.node.settings.marketplace_search_candidates_max))


@operation("A listed creator's card (advertisers; a creator also sees their own)", auth=True, tag="marketplace",
           reply=schemas.CreatorCard, problems={404: ["creator-not-listed"], **_ADVERTISERS})
async def creator_card(request: web.Request) -> web.Response:
    account = await require_account(request)
    market = _market(request)
    creator_id = path_id(request, "creator-not-listed", "listed creator")
    if creator_id != account.id:
        offers.require_advertiser(account, market.node.today())
    return json_response(await listing.card_of(market, creator_id, account.id))


@operation("Make an offer to a listed creator: a brief, a price in cents, a due date (advertisers; a retry with "
           "the same idempotency key returns the first offer)", status=201, reply_statuses=(200,), auth=True,
           tag="marketplace", body=NewOfferBody, reply=schemas.OfferView,
           problems={400: ["idempotency-key-required"], 403: ["offer-to-self", *_ADVERTISERS[403]],
                     404: ["creator-not-listed"]})
async def make_offer(request: web.Request) -> web.Response:
    account = await require_account(request)
    market = _market(request)
    body = await keyed_body(request, NewOfferBody)
    s = market.node.settings
    if len(body.brief) > s.offer_brief_chars_max:
        raise Problem(400, "invalid-field", f"brief: at most {s.offer_brief_chars_max} characters "
                      "(offer_brief_chars_max)", field="brief")
    if body.price_cents > s.offer_price_cents_max:
        raise Problem(400, "invalid-field", f"price_cents: at most {s.offer_price_cents_max} "
                      "(offer_price_cents_max)", field="price_cents")
    offer, made = await offers.make_offer(market, account, offers.NewOffer(
        body.creator_id, body.brief, body.price_cents, body.due_date, body.idempotency_key))
    return json_response(offer, status=201 if made else 200)


@operation("Offers you received (role=creator) or sent (role=advertiser), newest first", auth=True,
           tag="marketplace", query=OfferList, reply=schemas.OfferPage)
async def list_offers(request: web.Request) -> web.Response:
    account = await require_account(request)
    market = _market(request)
    q = parse_query(request, OfferList)
    _check_limit(market, q.limit)
    return json_response(await offers.list_offers(market.node.pool, account.id, q.role, q.before, q.limit))


@operation("One offer (its advertiser or creator)", auth=True, tag="marketplace", reply=schemas.OfferView,
           problems={404: ["offer-not-found"]})
async def get_offer(request: web.Request) -> web.Response:
    account = await require_account(request)
    offer_id = path_id(request, "offer-not-found", "offer")
    return json_response(await offers.get_offer(_market(request).node.pool, offer_id, account.id))


_STEP_PROBLEMS = {403: ["not-your-step"], 404: ["offer-not-found"], 409: ["offer-not-open"]}


def _step_handler(action: offers.Action, summary: str, problems: dict[int, list[str]]):  # type: ignore[no-untyped-def]
    merged = {code: [*_STEP_PROBLEMS.get(code, []), *problems.get(code, [])] for code in {*_STEP_PROBLEMS, *problems}}

    @operation(summary, auth=True, tag="marketplace", reply=schemas.OfferView, problems=merged,
               body=OfferDelivery if action == "deliver" else None)
    async def step(request: web.Request) -> web.Response:
        account = await require_account(request)
        offer_id = path_id(request, "offer-not-found", "offer")
        video_id = (await parse_body(request, OfferDelivery)).video_id if action == "deliver" else None
        return json_response(await offers.take_step(_market(request), account, offer_id, action, video_id))

    return step


accept_offer = _step_handler(
    "accept", "Accept an offer (its creator): the price moves from the advertiser's coins into escrow; accepting "
    "an accepted offer again answers it as it is", {409: ["offer-overdue", "offer-not-funded"]})
decline_offer = _step_handler(
    "decline", "Decline an offer (its creator), also after accepting it: what escrow holds goes back to the "
    "advertiser", {})
deliver_offer = _step_handler(
    "deliver", "Deliver an accepted offer (its creator) with your ready video: escrow pays your earnings less the "
    "platform fee, once; the video is labelled as a paid partnership",
    {404: ["video-not-found"], 409: ["offer-delivered", "offer-expired", "video-not-ready", "video-already-delivered"]})
cancel_offer = _step_handler(
    "cancel", "Cancel an offer (its advertiser): before it is accepted, or after its due date if it was not "
    "delivered; what escrow holds comes back", {409: ["offer-not-overdue"]})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/marketplace/listing", get_listing)
    app.router.add_put("/api/marketplace/listing", put_listing)
    app.router.add_get("/api/marketplace/creators", search_creators)
    app.router.add_get("/api/marketplace/creators/{id}", creator_card)
    app.router.add_post("/api/offers", make_offer)
    app.router.add_get("/api/offers", list_offers)
    app.router.add_get("/api/offers/{id}", get_offer)
    app.router.add_post("/api/offers/{id}/accept", accept_offer)
    app.router.add_post("/api/offers/{id}/decline", decline_offer)
    app.router.add_post("/api/offers/{id}/deliver", deliver_offer)
    app.router.add_post("/api/offers/{id}/cancel", cancel_offer)
