"""HTTP routes for money: coin packages and purchases, the payment webhook, the wallet, gifts, payouts."""

from __future__ import annotations

from typing import Any, ClassVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from commerce import auctions, freezes, gifts, merch, orders, payouts, purchases, schemas, webhooks
from commerce.ledger import balances, recent_transactions
from commerce.providers import (
    AUTHENTICATION_CARD,
    DECLINED_CARD,
    DECLINED_OFF_SESSION_CARD,
    SAVED_TEST_CARDS,
    SUCCEEDING_CARD,
)
from commerce.requests import COMMERCE, IdempotencyKey, Keyed, LocalCard, keyed_body
from livecore.accounts.session import require_account
from livecore.http import (
    BIGINT_MAX,
    NO_NUL,
    Content,
    Parameters,
    json_response,
    maximum_setting,
    minimum_setting,
    operation,
    parse_body,
    parse_headers,
    path_id,
)
from livecore.node import NODE
from livecore.openapi import SCHEMA_FILLERS


class NewPurchase(Keyed):
    package_id: str = Field(max_length=50, examples=["coins_100"])


class NewGift(Keyed):
    gift_id: str = Field(max_length=50, examples=["rose"])
    count: int = Field(default=1, ge=1, json_schema_extra=maximum_setting("gift_count_per_send_max"))


class NewPaymentMethod(BaseModel):
    """The document narrows it to this node's payment provider (x-filled-by): the local test provider needs a test
    card number; Stripe takes no card number (card details go to Stripe.js)."""

    model_config = ConfigDict(json_schema_extra={"x-filled-by": "payment-method-body"})

    card_number: str | None = Field(default=None, max_length=30, pattern=NO_NUL,
                                    description=f"the local test provider only: {SUCCEEDING_CARD} is saved, "
                                                f"{DECLINED_CARD} is declined (402), {DECLINED_OFF_SESSION_CARD} and "
                                                f"{AUTHENTICATION_CARD} are saved but their off-session charges are "
                                                "declined or need the payer's action")
    setup_intent_id: str | None = Field(default=None, max_length=100, pattern=NO_NUL,
                                        description="with Stripe: the SetupIntent the page confirmed")


def payment_method_body(provider: str) -> dict[str, Any]:
    """NewPaymentMethod's schema on a node whose payment provider is `provider`."""
    properties = NewPaymentMethod.model_json_schema()["properties"]
    if provider == "local":
        cards = "|".join((SUCCEEDING_CARD, DECLINED_CARD, *SAVED_TEST_CARDS))
        card = {"type": "string", "pattern": f"^(?:{cards})$", "examples": [SUCCEEDING_CARD],
                "description": properties["card_number"]["description"]}
        return {"properties": {**properties, "card_number": card}, "required": ["card_number"]}
    return {"properties": {**properties, "card_number": {"type": "null", "description": "not with Stripe: card "
                                                         "details go to Stripe.js (400 card-not-accepted)"}}}


class NewPayout(Keyed):
    amount_cents: int = Field(ge=1, le=BIGINT_MAX, json_schema_extra=minimum_setting("payout_cents_min"))


_SIGNED = Content.of("application/json", schema=webhooks.StripeEvent)
_ADULTS = "rule-adults-only"
_UNAVAILABLE = "payout-provider-unavailable"
_WEBHOOK_REFUSALS = {400: ["bad-signature", "stale-signature", "malformed-json", "malformed-event"],
                     503: ["webhooks-not-configured"]}


class StripeSignature(Parameters):
    refusal: ClassVar[tuple[int, str]] = (400, "bad-signature")
    signature: str = Field(alias="Stripe-Signature", pattern=r"^t=[0-9]+(,[a-z0-9]+=[^,]+)+$",
                           description="t=<unix seconds>,v1=<HMAC-SHA256 of t.body> as Stripe signs")


@operation("The coin packages on sale", tag="money", reply=schemas.CoinPackages)
async def coin_packages(request: web.Request) -> web.Response:
    shop = request.app[COMMERCE]
    return json_response({"packages": [p.__dict__ for p in shop.catalogue.packages.values()],
                          "provider": shop.payments.name})


@operation("Start buying a coin package (18+); coins arrive with the provider's verified webhook",
           body=NewPurchase, headers=IdempotencyKey, status=201, auth=True, tag="money", reply=schemas.PurchaseView,
           problems={403: [_ADULTS, "wallet-frozen"], 404: ["package-not-found"], 429: ["rule-purchase-velocity"],
                     502: ["payment-provider-unavailable"]})
async def create_purchase(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await keyed_body(request, NewPurchase)
    view = await purchases.create_purchase(request.app[COMMERCE], account, body.package_id, body.idempotency_key)
    return json_response(view, status=201)


@operation("One of your coin purchases and its state", auth=True, tag="money", reply=schemas.PurchaseView,
           problems={404: ["purchase-not-found"]})
async def get_purchase(request: web.Request) -> web.Response:
    account = await require_account(request)
    purchase_id = path_id(request, "purchase-not-found", "purchase")
    row = await purchases.get_purchase(request.app[NODE].pool, account.id, purchase_id)
    return json_response(purchases.purchase_view(row))


@operation("The local test provider's card form: pay a purchase with a test card", body=LocalCard, auth=True,
           tag="money", reply=schemas.PurchaseView,
           problems={404: ["purchase-not-found"], 409: ["not-local-provider", "payment-not-started"]})
async def confirm_local_payment(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await parse_body(request, LocalCard)
    purchase_id = path_id(request, "purchase-not-found", "purchase")
    view = await purchases.confirm_local_payment(request.app[COMMERCE], account, purchase_id, body.card_number)
    return json_response(view)


@operation("The payment provider's signed events (Stripe-Signature over the raw body); forged, stale or malformed "
           "ones change nothing", body=_SIGNED, headers=StripeSignature, tag="money",
           reply=schemas.WebhookReceipt, problems=_WEBHOOK_REFUSALS)
async def payment_webhook(request: web.Request) -> web.Response:
    signature = parse_headers(request, StripeSignature).signature
    result = await purchases.receive_webhook(request.app[COMMERCE], await request.read(), signature)
    return json_response(result)


@operation("Your coins, creator earnings (held and withdrawable) and recent transactions", auth=True, tag="money",
           reply=schemas.Wallet)
async def wallet(request: web.Request) -> web.Response:
    account = await require_account(request)
    shop = request.app[COMMERCE]
    earned = await payouts.earnings(shop, account.id)
    found = await balances(shop.node.pool, account.id)
    coins = found.get("coins", {})
    recent = await recent_transactions(shop.node.pool, account.id, shop.node.settings.wallet_transactions_max)
    return json_response({"coins": coins.get("balance", 0), "frozen": coins.get("frozen", False),
                          "earnings": earned, "transactions": recent})


@operation("The gift catalogue (current version) and the published conversion rate", tag="money",
           reply=schemas.GiftCatalogue)
async def gift_catalogue(request: web.Request) -> web.Response:
    return json_response(request.app[COMMERCE].catalogue.public_gifts())


@operation("Send a gift to a live stream's creator (18+)", body=NewGift, headers=IdempotencyKey, auth=True,
           tag="money", reply=schemas.GiftSent,
           problems={402: ["insufficient-funds"], 403: [_ADULTS, "self-gift", "wallet-frozen"],
                     404: ["gift-not-found", "stream-not-found"], 409: ["stream-not-live"],
                     429: ["rule-daily-spend-limit"], 503: ["gifts-busy", "node-stopping"]})
async def send_gift(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await keyed_body(request, NewGift)
    stream_id = path_id(request, "stream-not-found", "stream")
    result = await gifts.send_gift(request.app[COMMERCE], account, stream_id, body.gift_id, body.count,
                                   body.idempotency_key)
    return json_response(result)


@operation("A stream's top gifters", tag="money", reply=schemas.Leaderboard, problems={404: ["stream-not-found"]})
async def leaderboard(request: web.Request) -> web.Response:
    node = request.app[NODE]
    stream_id = path_id(request, "stream-not-found", "stream")
    top = await gifts.leaderboard(node.pool, stream_id, node.settings.leaderboard_entries_max)
    return json_response({"stream_id": stream_id, "leaders": top})


@operation("Cash out withdrawable earnings (18+, at least payout_cents_min) to your payout destination", body=NewPayout,
           headers=IdempotencyKey, status=201, auth=True, tag="money", reply=schemas.PayoutView,
           responses={202: "The provider's answer was lost: still pending; retry with the same key"},
           problems={400: ["rule-payout-minimum"], 402: ["insufficient-earnings"], 403: [_ADULTS],
                     409: ["payout-destination-missing", "payout-destination-not-ready"], 502: [_UNAVAILABLE]})
async def create_payout(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await keyed_body(request, NewPayout)
    view = await payouts.request_payout(request.app[COMMERCE], account, body.amount_cents, body.idempotency_key)
    return json_response(view, status=202 if view["state"] == "pending" else 201)


@operation("Your payouts, newest first", auth=True, tag="money", reply=schemas.Payouts)
async def list_payouts(request: web.Request) -> web.Response:
    account = await require_account(request)
    node = request.app[NODE]
    return json_response({"payouts": await payouts.list_payouts(node.pool, account.id,
                                                                node.settings.wallet_transactions_max)})


@operation("Where your payouts go and whether they can go there now (re-read from the payment provider)", auth=True,
           tag="money", reply=schemas.DestinationView, problems={502: [_UNAVAILABLE]})
async def get_payout_destination(request: web.Request) -> web.Response:
    account = await require_account(request)
    return json_response(await payouts.destination(request.app[COMMERCE], account))


@operation("Set up where your payouts go (18+): with Stripe, creates your Express connected account once and "
           "answers a fresh onboarding link (onboarding_url) until it is active; with the local test provider "
           "there is nothing to set up", auth=True, tag="money", reply=schemas.DestinationView,
           problems={403: [_ADULTS], 409: ["payout-destination-rejected", "payout-destination-refused"],
                     502: [_UNAVAILABLE]})
async def set_up_payout_destination(request: web.Request) -> web.Response:
    account = await require_account(request)
    return json_response(await payouts.set_up_destination(request.app[COMMERCE], account))


@operation("The payout provider's signed events (Stripe-Signature over the raw body): transfer.reversed, "
           "account.updated", body=_SIGNED, headers=StripeSignature, tag="money", reply=schemas.WebhookReceipt,
           problems={**_WEBHOOK_REFUSALS, 503: ["webhooks-not-configured", _UNAVAILABLE]})
async def payout_webhook(request: web.Request) -> web.Response:
    signature = parse_headers(request, StripeSignature).signature
    result = await payouts.receive_webhook(request.app[COMMERCE], await request.read(), signature)
    return json_response(result)


@operation("Lift the freeze a refund or dispute put on a viewer's coin wallet (admins)", auth=True, tag="money",
           reply=schemas.Unfrozen, problems={403: ["not-admin"], 404: ["user-not-found"]})
async def unfreeze_wallet(request: web.Request) -> web.Response:
    account = await require_account(request)
    owner_id = path_id(request, "user-not-found", "user")
    return json_response(await freezes.unfreeze(request.app[COMMERCE], account, owner_id))


@operation("Save a way to pay for auction wins and orders: with Stripe, a SetupIntent the page confirms (202), then "
           "again with its setup_intent_id (201); with the local test provider, {card_number} at once (201)",
           body=NewPaymentMethod, status=201, auth=True, tag="money", reply=schemas.SavedOrSetUp,
           reply_statuses=(202,),
           responses={202: "Confirm this SetupIntent (client_secret) with Stripe.js, then send its setup_intent_id"},
           problems={400: ["card-not-accepted", "setup-not-yours"], 402: ["card-declined"],
                     409: ["setup-not-complete", "too-many-payment-methods"], 502: ["payment-provider-unavailable"]})
async def save_payment_method(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await parse_body(request, NewPaymentMethod)
    view, status = await request.app[COMMERCE].payment_methods.save(account, body.card_number, body.setup_intent_id)
    return json_response(view, status=status)


@operation("Your saved payment methods", auth=True, tag="money", reply=schemas.PaymentMethods)
async def list_payment_methods(request: web.Request) -> web.Response:
    account = await require_account(request)
    return json_response({"methods": await request.app[COMMERCE].payment_methods.list(account.id)})


def add_routes(app: web.Application) -> None:
    app.setdefault(SCHEMA_FILLERS, {})["payment-method-body"] = lambda: payment_method_body(
        app[COMMERCE].payments.name)
    app.router.add_get("/api/coins/packages", coin_packages)
    app.router.add_post("/api/coins/purchases", create_purchase)
    app.router.add_get("/api/coins/purchases/{id}", get_purchase)
    app.router.add_post("/api/payments/local/{id}/confirm", confirm_local_payment)
    app.router.add_post("/api/payments/webhook", payment_webhook)
    app.router.add_get("/api/wallet", wallet)
    app.router.add_get("/api/gifts", gift_catalogue)
    app.router.add_post("/api/streams/{id}/gifts", send_gift)
    app.router.add_get("/api/streams/{id}/leaderboard", leaderboard)
    app.router.add_post("/api/payouts", create_payout)
    app.router.add_get("/api/payouts", list_payouts)
    app.router.add_get("/api/payouts/destination", get_payout_destination)
    app.router.add_post("/api/payouts/destination", set_up_payout_destination)
    app.router.add_post("/api/payouts/webhook", payout_webhook)
    app.router.add_post("/api/admin/wallets/{id}/unfreeze", unfreeze_wallet)
    app.router.add_post("/api/payment-methods", save_payment_method)
    app.router.add_get("/api/payment-methods", list_payment_methods)
    merch.add_routes(app)
    auctions.add_routes(app)
    orders.add_routes(app)
