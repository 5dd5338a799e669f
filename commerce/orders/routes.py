"""HTTP routes for orders: shipping quotes, checkout, the buyer's orders, a creator's sales, the fulfilment
provider's callbacks, the saved shipping address, and second-chance offers of won lots."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from commerce.fulfilment import FulfilmentEvent, WebhookHeaders
from commerce.orders import card_payments, checkout, history, payments, provider_orders, schemas, winners
from commerce.orders.addresses import Address, check_address
from commerce.orders.service import Orders
from commerce.requests import COMMERCE, IdempotencyKey, Keyed, LocalCard, OptionallyKeyed, keyed_body
from livecore.accounts.session import require_account
from livecore.http import (
    NO_NUL,
    Content,
    Id,
    Parameters,
    Problem,
    json_response,
    max_items_setting,
    maximum_setting,
    operation,
    parse_body,
    parse_headers,
    parse_query,
    path_id,
)

_QUANTITY = Field(default=1, ge=1, json_schema_extra=maximum_setting("order_quantity_max"),
                  description="at most order_quantity_max")
_VARIANT = Field(max_length=100, pattern=NO_NUL, description="a variant of the catalogue (GET /api/base-items)")


class QuoteRequest(BaseModel):
    variant_id: str = _VARIANT
    product_id: Id | None = Field(default=None, description="checks the product is offered in the variant")
    quantity: int = _QUANTITY
    address: Address


class OrderItem(BaseModel):
    product_id: Id
    variant_id: str = _VARIANT
    quantity: int = _QUANTITY


class NewOrder(Keyed):
    items: list[OrderItem] = Field(min_length=1, json_schema_extra=max_items_setting("order_lines_max"),
                                   description="at most order_lines_max lines, all of one creator's products")
    shipping_address: Address


class SavedCardPayment(Keyed):
    payment_method: Literal["saved"] | Id = Field(
        default="saved", description="saved: your newest saved card; or the id of one (GET /api/payment-methods)")


class Offer(OptionallyKeyed):
    pass


class Page(Parameters):
    before: Id | None = Field(default=None, description="the last order id of the page before")


_SIGNED = Content.of("application/json", schema=FulfilmentEvent)
_ADDRESS = {422: ["invalid-address", "cannot-ship-there"], 502: ["fulfilment-provider-unavailable"],
            503: ["fulfilment-not-configured"]}
_ORDER_NOT_FOUND = {404: ["order-not-found"]}


def _orders(request: web.Request) -> Orders:
    return request.app[COMMERCE].orders


@operation("A shipping quote from the fulfilment provider for a variant to an address (checked per country)",
           body=QuoteRequest, tag="orders", reply=schemas.QuoteView,
           problems={**_ADDRESS, 404: ["variant-not-found"]})
async def shipping_quote(request: web.Request) -> web.Response:
    body = await parse_body(request, QuoteRequest)
    return json_response(await checkout.shipping_quote(_orders(request), body.product_id, body.variant_id,
                                                       body.quantity, body.address))


@operation("Order products (one creator's) at their price; answers the payment to complete (client_secret, or "
           "the local test provider's pay_url); paid only by the provider's verified webhook", body=NewOrder,
           headers=IdempotencyKey, status=201, auth=True, tag="orders", reply=schemas.OrderView, reply_statuses=(200,),
           responses={200: "A retry with the same idempotency key: the first order"},
           problems={**_ADDRESS, 404: ["variant-not-found"], 422: [*_ADDRESS[422], "one-creator-per-order"],
                     502: ["fulfilment-provider-unavailable", "payment-provider-unavailable"]})
async def create_order(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await keyed_body(request, NewOrder)
    key = body.idempotency_key
    wanted = [(i.product_id, i.variant_id, i.quantity) for i in body.items]
    view, created = await checkout.create_order(_orders(request), account, wanted, body.shipping_address, key)
    return json_response(view, status=201 if created else 200)


@operation("One of your orders with its state history", auth=True, tag="orders", reply=schemas.OrderView,
           problems=_ORDER_NOT_FOUND)
async def get_order(request: web.Request) -> web.Response:
    account = await require_account(request)
    order_id = path_id(request, "order-not-found", "order")
    pool = request.app[COMMERCE].node.pool
    return json_response(await history.order_view(pool, await history.get_order(pool, account.id, order_id)))


@operation("Your orders, newest first (?before=<order id> for the next page)", auth=True, tag="orders",
           query=Page, reply=schemas.Orders)
async def list_orders(request: web.Request) -> web.Response:
    account = await require_account(request)
    ctx = _orders(request)
    before = parse_query(request, Page).before
    found, more = await history.list_orders(ctx.pool, account.id, before, ctx.settings.orders_listed_max)
    return json_response({"orders": found, "next_before": found[-1]["id"] if more else None})


@operation("Cancel your order: unpaid at once; paid until production starts (the money goes back)", auth=True,
           tag="orders", reply=schemas.OrderView,
           problems={**_ORDER_NOT_FOUND, 409: ["order-not-cancellable"], 502: ["fulfilment-provider-unavailable"],
                     503: ["fulfilment-not-configured"]})
async def cancel_order(request: web.Request) -> web.Response:
    account = await require_account(request)
    order_id = path_id(request, "order-not-found", "order")
    commerce = request.app[COMMERCE]
    order = await provider_orders.cancel_order(commerce, account, order_id)
    return json_response(await history.order_view(commerce.node.pool, order))


@operation("The local test provider's card form: pay an order with a test card", body=LocalCard, auth=True,
           tag="orders", reply=schemas.OrderView,
           problems={**_ORDER_NOT_FOUND, 409: ["not-local-provider", "payment-not-started"]})
async def confirm_local_payment(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await parse_body(request, LocalCard)
    order_id = path_id(request, "order-not-found", "order")
    commerce = request.app[COMMERCE]
    order = await payments.confirm_local_payment(commerce, account, order_id, body.card_number)
    return json_response(await history.order_view(commerce.node.pool, order))


@operation("Pay your pending order with your saved card: the order's payment is confirmed with it at the payment "
           "provider; paid only by the provider's verified webhook (at once with the local test provider); a retry "
           "with the same idempotency key answers the first outcome", body=SavedCardPayment, headers=IdempotencyKey,
           auth=True, tag="orders", reply=schemas.OrderView,
           problems={**_ORDER_NOT_FOUND, 402: ["card-declined", "payment-requires-action"],
                     409: ["order-not-pending", "payment-not-started", "payment-method-not-found",
                           "payment-in-progress", "payment-outcome-unknown"],
                     502: ["payment-provider-unavailable"]})
async def pay_order(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await keyed_body(request, SavedCardPayment)
    order_id = path_id(request, "order-not-found", "order")
    commerce = request.app[COMMERCE]
    order = await card_payments.pay_with_saved_card(commerce, account, order_id, body.payment_method,
                                                    body.idempotency_key)
    return json_response(await history.order_view(commerce.node.pool, order))


@operation("Your sales (creators): paid orders of your products with their margins, held until shipped",
           auth=True, tag="orders", query=Page, reply=schemas.Sales)
async def sales(request: web.Request) -> web.Response:
    account = await require_account(request)
    ctx = _orders(request)
    before = parse_query(request, Page).before
    return json_response(await history.sales(ctx.pool, account.id, before, ctx.settings.orders_listed_max))


@operation("The fulfilment provider's callbacks, signed per Standard Webhooks (webhook-id, webhook-timestamp, "
           "webhook-signature); duplicates and older versions change nothing", tag="orders", body=_SIGNED,
           headers=WebhookHeaders, reply=schemas.FulfilmentReceipt,
           problems={400: ["bad-signature", "malformed-event"], 503: ["webhooks-not-configured"]})
async def fulfilment_webhook(request: web.Request) -> web.Response:
    headers = parse_headers(request, WebhookHeaders)
    payload = await request.read()
    return json_response(await provider_orders.receive_webhook(request.app[COMMERCE], payload, headers))


@operation("Save your shipping address (checked per country); auction wins ship to it", body=Address, auth=True,
           tag="orders", reply=schemas.AddressView, problems={422: ["invalid-address"]})
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


@operation("Your saved shipping address; 204 when you have not saved one (a new account's normal state, not an error)",
           auth=True, tag="orders", reply=schemas.AddressView, responses={204: "no shipping address saved yet"})
async def get_shipping_address(request: web.Request) -> web.Response:
    account = await require_account(request)
    found = await _orders(request).pool.fetchval("SELECT address FROM shipping_addresses WHERE owner_id = $1",
                                                 account.id)
    if found is None:
        return web.Response(status=204)
    return web.Response(body=found, content_type="application/json")


@operation("Take the lot offered to you after its winner did not pay: your saved card is charged your highest "
           "bid plus shipping to your saved address", body=Offer, auth=True, tag="auctions",
           reply=schemas.AttemptView, problems={404: ["auction-not-found", "offer-not-found", "variant-not-found"],
                                              409: ["offer-closed"]})
async def accept_offer(request: web.Request) -> web.Response:
    account = await require_account(request)
    await parse_body(request, Offer)
    auction_id = path_id(request, "auction-not-found", "auction")
    return json_response(await winners.accept_offer(_orders(request), account, auction_id))


@operation("Turn down the lot offered to you; it goes on to the next bidder", body=Offer, auth=True,
           tag="auctions", reply=schemas.AttemptView, problems={404: ["auction-not-found", "offer-not-found"]})
async def decline_offer(request: web.Request) -> web.Response:
    account = await require_account(request)
    await parse_body(request, Offer)
    auction_id = path_id(request, "auction-not-found", "auction")
    return json_response(await winners.decline_offer(_orders(request), account, auction_id))


@operation("How a won lot is being paid for: the winner's charge and every second-chance offer after it",
           tag="auctions", reply=schemas.PaymentAttempts, problems={404: ["auction-not-found"]})
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
    app.router.add_post("/api/orders/{id}/pay", pay_order)
    app.router.add_post("/api/payments/local/orders/{id}/confirm", confirm_local_payment)
    app.router.add_get("/api/sales", sales)
    app.router.add_post("/api/fulfilment/webhook", fulfilment_webhook)
    app.router.add_put("/api/shipping-address", save_shipping_address)
    app.router.add_get("/api/shipping-address", get_shipping_address)
    app.router.add_post("/api/auctions/{id}/offer/accept", accept_offer)
    app.router.add_post("/api/auctions/{id}/offer/decline", decline_offer)
    app.router.add_get("/api/auctions/{id}/payments", payment_attempts)
