"""HTTP routes for money: coin packages and purchases, the payment webhook, the wallet, gifts, payouts."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from commerce import auctions, freezes, gifts, merch, orders, payouts, purchases
from commerce.ledger import balances, recent_transactions
from commerce.requests import COMMERCE, idempotency_key
from livecore.accounts.session import require_account
from livecore.http import json_response, operation, parse_body, path_id
from livecore.node import NODE

_KEY = Field(default=None, min_length=1, max_length=100,
             description="makes a retry return the first result; may come as the Idempotency-Key header instead")


class NewPurchase(BaseModel):
    package_id: str = Field(max_length=50)
    idempotency_key: str | None = _KEY


class LocalCard(BaseModel):
    card_number: str = Field(max_length=30, description="4242424242424242 pays, 4000000000000002 is declined")


class NewGift(BaseModel):
    gift_id: str = Field(max_length=50)
    count: int = Field(default=1, ge=1)
    idempotency_key: str | None = _KEY


class NewPaymentMethod(BaseModel):
    card_number: str | None = Field(default=None, max_length=30,
                                    description="the local test provider only: 4242424242424242 is saved")
    setup_intent_id: str | None = Field(default=None, max_length=100,
                                        description="with Stripe: the SetupIntent the page confirmed")


class NewPayout(BaseModel):
    amount_cents: int = Field(gt=0)
    idempotency_key: str | None = _KEY


@operation("The coin packages on sale", tag="money")
async def coin_packages(request: web.Request) -> web.Response:
    shop = request.app[COMMERCE]
    return json_response({"packages": [p.__dict__ for p in shop.catalogue.packages.values()],
                          "provider": shop.payments.name})


@operation("Start buying a coin package (18+); coins arrive with the provider's verified webhook",
           body=NewPurchase, status=201, auth=True, tag="money")
async def create_purchase(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await parse_body(request, NewPurchase)
    key = idempotency_key(request, body.idempotency_key)
    view = await purchases.create_purchase(request.app[COMMERCE], account, body.package_id, key)
    return json_response(view, status=201)


@operation("One of your coin purchases and its state", auth=True, tag="money")
async def get_purchase(request: web.Request) -> web.Response:
    account = await require_account(request)
    purchase_id = path_id(request, "purchase-not-found", "purchase")
    row = await purchases.get_purchase(request.app[NODE].pool, account.id, purchase_id)
    return json_response(purchases.purchase_view(row))


@operation("The local test provider's card form: pay a purchase with a test card", body=LocalCard, auth=True,
           tag="money")
async def confirm_local_payment(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await parse_body(request, LocalCard)
    purchase_id = path_id(request, "purchase-not-found", "purchase")
    view = await purchases.confirm_local_payment(request.app[COMMERCE], account, purchase_id, body.card_number)
    return json_response(view)


@operation("The payment provider's signed events (Stripe-Signature)", tag="money",
           responses={400: "Forged, stale or malformed; nothing changed"})
async def payment_webhook(request: web.Request) -> web.Response:
    payload = await request.read()
    result = await purchases.receive_webhook(request.app[COMMERCE], payload, request.headers.get("Stripe-Signature"))
    return json_response(result)


@operation("Your coins, creator earnings (held and withdrawable) and recent transactions", auth=True, tag="money")
async def wallet(request: web.Request) -> web.Response:
    account = await require_account(request)
    shop = request.app[COMMERCE]
    earned = await payouts.earnings(shop, account.id)
    found = await balances(shop.node.pool, account.id)
    coins = found.get("coins", {})
    recent = await recent_transactions(shop.node.pool, account.id, shop.node.settings.wallet_transactions_max)
    return json_response({"coins": coins.get("balance", 0), "frozen": coins.get("frozen", False),
                          "earnings": earned, "transactions": recent})


@operation("The gift catalogue (current version) and the published conversion rate", tag="money")
async def gift_catalogue(request: web.Request) -> web.Response:
    return json_response(request.app[COMMERCE].catalogue.public_gifts())


@operation("Send a gift to a live stream's creator (18+)", body=NewGift, auth=True, tag="money",
           responses={402: "Not enough coins", 429: "A spending rule refused it"})
async def send_gift(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await parse_body(request, NewGift)
    key = idempotency_key(request, body.idempotency_key)
    stream_id = path_id(request, "stream-not-found", "stream")
    result = await gifts.send_gift(request.app[COMMERCE], account, stream_id, body.gift_id, body.count, key)
    return json_response(result)


@operation("A stream's top gifters", tag="money")
async def leaderboard(request: web.Request) -> web.Response:
    node = request.app[NODE]
    stream_id = path_id(request, "stream-not-found", "stream")
    top = await gifts.leaderboard(node.pool, stream_id, node.settings.leaderboard_entries_max)
    return json_response({"stream_id": stream_id, "leaders": top})


@operation("Cash out withdrawable earnings (18+, at least payout_cents_min) to your payout destination", body=NewPayout,
           status=201, auth=True, tag="money",
           responses={202: "The provider's answer was lost: still pending; retry with the same key",
                      402: "Not enough withdrawable earnings",
                      409: "No payout destination yet, or it is not ready (payout-destination-missing, "
                           "payout-destination-not-ready)",
                      502: "The payout provider could not be reached"})
async def create_payout(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await parse_body(request, NewPayout)
    key = idempotency_key(request, body.idempotency_key)
    view = await payouts.request_payout(request.app[COMMERCE], account, body.amount_cents, key)
    return json_response(view, status=202 if view["state"] == "pending" else 201)


@operation("Your payouts, newest first", auth=True, tag="money")
async def list_payouts(request: web.Request) -> web.Response:
    account = await require_account(request)
    node = request.app[NODE]
    return json_response({"payouts": await payouts.list_payouts(node.pool, account.id,
                                                                node.settings.wallet_transactions_max)})


@operation("Where your payouts go and whether they can go there now (re-read from the payment provider)", auth=True,
           tag="money", responses={502: "The payout provider could not be reached"})
async def get_payout_destination(request: web.Request) -> web.Response:
    account = await require_account(request)
    return json_response(await payouts.destination(request.app[COMMERCE], account))


@operation("Set up where your payouts go (18+): with Stripe, creates your Express connected account once and "
           "answers a fresh onboarding link (onboarding_url) until it is active; with the local test provider "
           "there is nothing to set up", auth=True, tag="money",
           responses={409: "The provider rejected your payout account (payout-destination-rejected)",
                      422: "The provider refused to create the account (payout-destination-refused)",
                      502: "The payout provider could not be reached"})
async def set_up_payout_destination(request: web.Request) -> web.Response:
    account = await require_account(request)
    return json_response(await payouts.set_up_destination(request.app[COMMERCE], account))


@operation("The payout provider's signed events (Stripe-Signature): transfer.reversed, account.updated", tag="money",
           responses={400: "Forged, stale or malformed; nothing changed"})
async def payout_webhook(request: web.Request) -> web.Response:
    payload = await request.read()
    result = await payouts.receive_webhook(request.app[COMMERCE], payload, request.headers.get("Stripe-Signature"))
    return json_response(result)


@operation("Lift the freeze a refund or dispute put on a viewer's coin wallet (admins)", auth=True, tag="money",
           responses={403: "Not an admin", 404: "No such user"})
async def unfreeze_wallet(request: web.Request) -> web.Response:
    account = await require_account(request)
    owner_id = path_id(request, "user-not-found", "user")
    return json_response(await freezes.unfreeze(request.app[COMMERCE], account, owner_id))


@operation("Save a way to pay for auction wins and orders: with Stripe, a SetupIntent the page confirms (202), then "
           "again with its setup_intent_id (201); with the local test provider, {card_number} at once (201)",
           body=NewPaymentMethod, status=201, auth=True, tag="money",
           responses={202: "Confirm this SetupIntent (client_secret) with Stripe.js, then send its setup_intent_id",
                      400: "Not a card the provider takes this way, or a SetupIntent that is not yours",
                      402: "The card was declined", 409: "The SetupIntent is not confirmed yet, or "
                      "payment_methods_per_user_max is reached", 502: "The payment provider could not be reached"})
async def save_payment_method(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await parse_body(request, NewPaymentMethod)
    view, status = await request.app[COMMERCE].payment_methods.save(account, body.card_number, body.setup_intent_id)
    return json_response(view, status=status)


@operation("Your saved payment methods", auth=True, tag="money")
async def list_payment_methods(request: web.Request) -> web.Response:
    account = await require_account(request)
    return json_response({"methods": await request.app[COMMERCE].payment_methods.list(account.id)})


def add_routes(app: web.Application) -> None:
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
