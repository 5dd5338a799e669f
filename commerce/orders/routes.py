"""HTTP routes for orders: shipping quotes, checkout, the buyer's orders, a creator's sales, the fulfilment
provider's callbacks, the saved shipping address, and second-chance offers of won lots."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from commerce.orders import checkout, history, payments, provider_orders, winners
from commerce.orders.addresses import Address, check_address
from commerce.orders.service import Orders
from commerce.requests import COMMERCE, Keyed, OptionallyKeyed, keyed_body
from livecore.accounts.session import require_account
from livecore.http import Problem, json_response, operation, parse_body, path_id


class QuoteRequest(BaseModel):
    variant_id: str = Field(max_length=100)
    product_id: int | None = Field(default=None, gt=0, description="checks the product is offered in the variant")
    quantity: int = Field(default=1, gt=0)
    address: Address


class OrderItem(BaseModel):
    product_id: int = Field(gt=0)
    variant_id: str = Field(max_length=100)
    quantity: int = Field(default=1, gt=0)


class NewOrder(Keyed):
    items: list[OrderItem] = Field(min_length=1, max_length=1000)
    shipping_address: Address


class OrderTestCard(BaseModel):
    card_number: str = Field(max_length=30, description="4242424242424242 pays, 4000000000000002 is declined")


class Offer(OptionallyKeyed):
    pass


def _orders(request: web.Request) -> Orders:
    return request.app[COMMERCE].orders


def _before(request: web.Request) -> int | None:
    raw = request.query.get("before", "")
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise Problem(400, "invalid-field", "before must be an order id", field="before")
    return int(raw)


_ADDRESS_PROBLEMS = {400: "A malformed body or field (invalid-field)",
                     422: "The address fails its country's checks (invalid-address, naming the field), or the "
                          "provider cannot ship there (cannot-ship-there)",
                     502: "The fulfilment provider could not be reached",
                     503: "No fulfilment provider is configured"}


@operation("A shipping quote from the fulfilment provider for a variant to an address (checked per country)",
           body=QuoteRequest, tag="orders", responses={**_ADDRESS_PROBLEMS, 404: "No such variant or product"})
async def shipping_quote(request: web.Request) -> web.Response:
    body = await parse_body(request, QuoteRequest)
    return json_response(await checkout.shipping_quote(_orders(request), body.product_id, body.variant_id,
                                                       body.quantity, body.address))


@operation("Order products (one creator's) at their price; answers the payment to complete (client_secret, or "
           "the local test provider's pay_url); paid only by the provider's verified webhook", body=NewOrder,
           status=201, auth=True, tag="orders",
           responses={**_ADDRESS_PROBLEMS, 200: "A retry with the same idempotency key: the first order",
                      400: "A malformed body or field, or no idempotency key (idempotency-key-required)",
                      404: "No such product or variant (variant-not-found)",
                      422: "The address fails its country's checks (invalid-address, naming the field), the "
                           "provider cannot ship there (cannot-ship-there), or the items are from more than one "
                           "creator (one-creator-per-order)",
                      502: "The payment or fulfilment provider could not be reached"})
async def create_order(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await keyed_body(request, NewOrder)
    key = body.idempotency_key
    wanted = [(i.product_id, i.variant_id, i.quantity) for i in body.items]
    view, created = await checkout.create_order(_orders(request), account, wanted, body.shipping_address, key)
    return json_response(view, status=201 if created else 200)


@operation("One of your orders with its state history", auth=True, tag="orders",
           responses={404: "No such order of yours"})
async def get_order(request: web.Request) -> web.Response:
    account = await require_account(request)
    order_id = path_id(request, "order-not-found", "order")
    pool = request.app[COMMERCE].node.pool
    return json_response(await history.order_view(pool, await history.get_order(pool, account.id, order_id)))


@operation("Your orders, newest first (?before=<order id> for the next page)", auth=True, tag="orders",
           responses={400: "A malformed cursor"})
async def list_orders(request: web.Request) -> web.Response:
    account = await require_account(request)
    ctx = _orders(request)
    found = await history.list_orders(ctx.pool, account.id, _before(request), ctx.settings.orders_listed_max)
    return json_response({"orders": found, "next_before": found[-1]["id"] if found else None})


@operation("Cancel your order: unpaid at once; paid until production starts (the money goes back)", auth=True,
           tag="orders", responses={404: "No such order of yours", 409: "It can no longer be cancelled",
                                    502: "The fulfilment provider could not be reached",
                                    503: "No fulfilment provider is configured"})
async def cancel_order(request: web.Request) -> web.Response:
    account = await require_account(request)
    order_id = path_id(request, "order-not-found", "order")
    commerce = request.app[COMMERCE]
    order = await provider_orders.cancel_order(commerce, account, order_id)
    return json_response(await history.order_view(commerce.node.pool, order))


@operation("The local test provider's card form: pay an order with a test card", body=OrderTestCard, auth=True,
           tag="orders", responses={400: "Not a test card", 404: "No such order of yours",
                                    409: "The node pays through Stripe, or the payment was not started"})
async def confirm_local_payment(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await parse_body(request, OrderTestCard)
    order_id = path_id(request, "order-not-found", "order")
    commerce = request.app[COMMERCE]
    order = await payments.confirm_local_payment(commerce, account, order_id, body.card_number)
    return json_response(await history.order_view(commerce.node.pool, order))


@operation("Your sales (creators): paid orders of your products with their margins, held until shipped",
           auth=True, tag="orders", responses={400: "A malformed cursor"})
async def sales(request: web.Request) -> web.Response:
    account = await require_account(request)
    ctx = _orders(request)
    return json_response(await history.sales(ctx.pool, account.id, _before(request), ctx.settings.orders_listed_max))


@operation("The fulfilment provider's callbacks, signed per Standard Webhooks (webhook-id, webhook-timestamp, "
           "webhook-signature); duplicates and older versions change nothing", tag="orders",
           responses={400: "Forged, stale or malformed; nothing changed",
                      503: "No fulfilment webhook secret is configured"})
async def fulfilment_webhook(request: web.Request) -> web.Response:
    payload = await request.read()
    return json_response(await provider_orders.receive_webhook(request.app[COMMERCE], payload, dict(request.headers)))


@operation("Save your shipping address (checked per country); auction wins ship to it", body=Address, auth=True,
           tag="orders", responses={400: "A malformed body or field",
                                    422: "The address fails its country's checks (invalid-address)"})
async def save_shipping_address(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await parse_body(request, Address)
    checked = check_address(body)
    ctx = _orders(request)
    await ctx.pool.execute(
        "INSERT INTO shipping_addresses (owner_id, address, updated_ms) VALUES ($1, $2::jsonb, $3)"
        " ON CONFLICT (owner_id) DO UPDATE SET address = EXCLUDED.address, updated_ms = EXCLUDED.updated_ms",
        account.id, Address.model_validate(checked).model_dump_json(), ctx.clock.now_ms())
    return json_response(checked)


@operation("Your saved shipping address", auth=True, tag="orders", responses={404: "None saved yet"})
async def get_shipping_address(request: web.Request) -> web.Response:
    account = await require_account(request)
    found = await _orders(request).pool.fetchval("SELECT address FROM shipping_addresses WHERE owner_id = $1",
                                                 account.id)
    if found is None:
        raise Problem(404, "shipping-address-not-found", "save one first: PUT /api/shipping-address")
    return web.Response(body=found, content_type="application/json")


@operation("Take the lot offered to you after its winner did not pay: your saved card is charged your highest "
           "bid plus shipping to your saved address", body=Offer, auth=True, tag="auctions",
           responses={400: "A malformed body", 404: "No offer of this lot to you",
                      409: "The offer expired or was declined (offer-closed)"})
async def accept_offer(request: web.Request) -> web.Response:
    account = await require_account(request)
    await parse_body(request, Offer)
    auction_id = path_id(request, "auction-not-found", "auction")
    return json_response(await winners.accept_offer(_orders(request), account, auction_id))


@operation("Turn down the lot offered to you; it goes on to the next bidder", body=Offer, auth=True,
           tag="auctions", responses={400: "A malformed body", 404: "No open offer of this lot to you"})
async def decline_offer(request: web.Request) -> web.Response:
    account = await require_account(request)
    await parse_body(request, Offer)
    auction_id = path_id(request, "auction-not-found", "auction")
    return json_response(await winners.decline_offer(_orders(request), account, auction_id))


@operation("How a won lot is being paid for: the winner's charge and every second-chance offer after it",
           tag="auctions", responses={404: "No such auction"})
async def payment_attempts(request: web.Request) -> web.Response:
    auction_id = path_id(request, "auction-not-found", "auction")
    ctx = _orders(request)
    if not await ctx.pool.fetchval("SELECT 1 FROM auctions WHERE id = $1", auction_id):
        raise Problem(404, "auction-not-found", f"there is no auction {auction_id}")
    return json_response({"auction_id": auction_id, "attempts": await winners.attempts_of(ctx, auction_id)})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/shipping/quote", shipping_quote)
    app.router.add_post("/api/orders", create_order)
    app.router.add_get("/api/orders", list_orders)
    app.router.add_get("/api/orders/{id}", get_order)
    app.router.add_post("/api/orders/{id}/cancel", cancel_order)
    app.router.add_post("/api/payments/local/orders/{id}/confirm", confirm_local_payment)
    app.router.add_get("/api/sales", sales)
    app.router.add_post("/api/fulfilment/webhook", fulfilment_webhook)
    app.router.add_put("/api/shipping-address", save_shipping_address)
    app.router.add_get("/api/shipping-address", get_shipping_address)
    app.router.add_post("/api/auctions/{id}/offer/accept", accept_offer)
    app.router.add_post("/api/auctions/{id}/offer/decline", decline_offer)
    app.router.add_get("/api/auctions/{id}/payments", payment_attempts)
