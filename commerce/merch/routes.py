"""HTTP routes for merch: the base-item catalogue, design uploads, products and their mockups, room pins."""

from __future__ import annotations

import re
from typing import Annotated, Any

from aiohttp import BodyPartReader, web
from pydantic import BaseModel, ConfigDict, Field

from commerce.merch import designs, pins, products, schemas
from commerce.merch.service import Merch
from commerce.requests import COMMERCE, IdempotencyKey, OptionallyKeyed, keyed_body
from livecore.accounts.session import require_account
from livecore.http import (
    NO_NUL,
    Content,
    Id,
    Parameters,
    Problem,
    json_response,
    operation,
    parse_body,
    parse_query,
    path_id,
)
from livecore.openapi import SCHEMA_FILLERS

UPLOAD_CHUNK_BYTES = 64 * 1024
PRICE_CENTS_MAX = 100_000_000
VARIANT_ID = r"^[a-z0-9-]{1,100}$"  # the catalogue's variant ids are slugs
_IMAGES_BUSY = {503: ["images-busy"]}
_JPEG = Content.of("image/jpeg", schema={"type": "string", "format": "binary"})
_DESIGN_UPLOAD = Content.of("multipart/form-data", schema={
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary", "contentMediaType": "image/png",
                            "description": "the design: a PNG or JPEG (design_bytes_max, design_pixels_max, "
                                           "design_edge_px_min)"}},
})


class NewProduct(OptionallyKeyed):
    """The document lists each base item with its variants and its floor (x-filled-by, from this node's catalogue
    and fee settings)."""

    model_config = ConfigDict(json_schema_extra={"x-filled-by": "product-price-floors"})

    design_id: Id
    base_item_id: str = Field(max_length=50, pattern=NO_NUL, examples=["tshirt"])
    title: str = Field(min_length=1, max_length=120, pattern=NO_NUL)
    price_cents: int = Field(ge=1, le=PRICE_CENTS_MAX, description="one price for every variant offered; at least "
                             "the floor (base cost + merch_fee_percent + merch_fee_fixed_cents) of the dearest variant "
                             "offered, else 422 price-below-floor. The document's minimum per base item is its "
                             "dearest variant's floor; naming only cheaper variants, a price may go as low as theirs")
    variant_ids: list[Annotated[str, Field(max_length=100, pattern=NO_NUL)]] | None = Field(
        default=None, max_length=100, description="the variants to offer (of the base item: else 400 invalid-field); "
        "all of the base item's when absent or empty")


class Pin(BaseModel):
    product_id: Id


class ProductsPage(Parameters):
    before: Id | None = Field(default=None, description="the last product id of the page before")


class Mockup(BaseModel):
    id: Id
    variant_id: str = Field(pattern=VARIANT_ID, description="one of the product's variants")


def price_floors(merch: Merch) -> dict[str, Any]:
    """NewProduct's schema per base item: its variants and the floor of its dearest one."""
    return {"oneOf": [
        {"properties": {
            "base_item_id": {"const": item.id},
            "variant_ids": {"anyOf": [{"type": "array", "items": {"enum": [v.id for v in item.variants]}},
                                      {"type": "null"}]},
            "price_cents": {"minimum": merch.fees.floor_cents(max(v.base_cost_cents for v in item.variants))},
        }}
        for item in merch.items.values()
    ]}


def _merch(request: web.Request) -> Merch:
    return request.app[COMMERCE].merch


@operation("The print-on-demand catalogue: base items, their print areas and variants with base costs", tag="merch",
           reply=schemas.BaseItems)
async def base_items(request: web.Request) -> web.Response:
    return json_response({"items": [item.public() for item in _merch(request).items.values()]})


@operation("Upload a design (multipart/form-data, one file field `file`, PNG or JPEG; creators)", status=201,
           auth=True, tag="merch", body=_DESIGN_UPLOAD, reply=schemas.DesignView, reply_statuses=(200,),
           responses={200: "The same image was uploaded before: that design"},
           problems={400: ["file-required", "malformed-multipart"], 403: ["not-a-creator"],
                     413: ["design-too-large", "design-too-many-pixels"],
                     415: ["unsupported-media-type", "unsupported-image"], 422: ["corrupt-image", "design-too-small"],
                     **_IMAGES_BUSY})
async def upload_design(request: web.Request) -> web.Response:
    account = await require_account(request)
    if "creator" not in account.roles:
        raise Problem(403, "not-a-creator", "only creator accounts can upload designs")
    merch = _merch(request)
    data, declared = await _read_file(request, merch.design_limits.bytes_max)
    checked = await merch.workers.run(designs.check_design, data, declared, merch.design_limits)
    view = await designs.store_design(merch.pool, account.id, checked, merch.clock.now_ms())
    return json_response(view, status=201 if view.pop("created") else 200)


async def _read_file(request: web.Request, bytes_max: int) -> tuple[bytes, str | None]:
    """The `file` part's bytes and declared type, read in chunks and refused as soon as it passes `bytes_max`."""
    if request.content_type != "multipart/form-data":
        raise Problem(415, "unsupported-media-type", "send the design as multipart/form-data with a `file` field")
    try:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name != "file":
                continue
            chunks, size = [], 0
            while chunk := await part.read_chunk(UPLOAD_CHUNK_BYTES):
                size += len(chunk)
                if size > bytes_max:
                    raise designs.too_large(bytes_max)
                chunks.append(chunk)
            declared = part.headers.get("Content-Type")
            return b"".join(chunks), declared.split(";")[0].strip().lower() if declared else None
    except (ValueError, AssertionError, RuntimeError) as exc:
        raise Problem(400, "malformed-multipart", f"the multipart body could not be read: {exc}") from exc
    raise Problem(400, "file-required", "send the image in a form field named `file`")


@operation("Make a product: one of your designs on a base item at your price (never below base cost + fees)",
           body=NewProduct, headers=IdempotencyKey, status=201, auth=True, tag="merch", reply=schemas.ProductView,
           reply_statuses=(200,), responses={200: "A retry with the same idempotency key: the first product"},
           problems={403: ["not-a-creator"], 404: ["base-item-not-found", "design-not-found"],
                     409: ["too-many-products"], 422: ["price-below-floor"], **_IMAGES_BUSY})
async def create_product(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await keyed_body(request, NewProduct)
    view, created = await products.create_product(_merch(request), account, body.design_id, body.base_item_id,
                                                  body.title, body.price_cents, body.variant_ids,
                                                  body.idempotency_key)
    return json_response(view, status=201 if created else 200)


@operation("A product with its variants, prices and mockup URLs", tag="merch", reply=schemas.ProductView,
           problems={404: ["product-not-found"]})
async def get_product(request: web.Request) -> web.Response:
    product_id = path_id(request, "product-not-found", "product")
    return json_response(await products.get_product(_merch(request).pool, product_id))


@operation("A product variant's mockup (JPEG)", tag="merch", path=Mockup, reply=_JPEG,
           reply_headers={"Cache-Control": "immutable: a mockup never changes"},
           problems={404: ["product-not-found", "mockup-not-found"]})
async def product_mockup(request: web.Request) -> web.Response:
    product_id = path_id(request, "product-not-found", "product")
    variant_id = request.match_info["variant_id"]
    if not re.fullmatch(VARIANT_ID, variant_id):
        raise Problem(404, "mockup-not-found", f"product {product_id} has no variant {variant_id!r}")
    image = await products.mockup_image(_merch(request), product_id, variant_id)
    return web.Response(body=image, content_type="image/jpeg",
                        headers={"Cache-Control": "public, max-age=86400, immutable"})


@operation("A creator's shop: their products, newest first (?before=<product id> for the next page)", tag="merch",
           query=ProductsPage, reply=schemas.Products, problems={404: ["user-not-found"]})
async def user_products(request: web.Request) -> web.Response:
    merch = _merch(request)
    creator_id = path_id(request, "user-not-found", "user")
    before = parse_query(request, ProductsPage).before
    if await merch.node.accounts.get(creator_id) is None:
        raise Problem(404, "user-not-found", f"there is no user {creator_id}")
    limit = merch.settings.products_listed_max
    found = await products.list_products(merch.pool, creator_id, before, limit)
    return json_response({"products": found, "next_before": found[-1]["id"] if len(found) == limit else None})


@operation("Pin one of your products in your live room (room event product_pinned)", body=Pin, auth=True,
           tag="merch", reply=schemas.PinView,
           problems={403: ["not-your-stream", "not-your-product"], 404: ["stream-not-found", "product-not-found"]})
async def pin_product(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await parse_body(request, Pin)
    stream_id = path_id(request, "stream-not-found", "stream")
    return json_response(await pins.set_pin(_merch(request), account, stream_id, body.product_id))


@operation("Unpin the product in your live room (room event product_pinned with product null)", auth=True,
           tag="merch", reply=schemas.PinView, problems={403: ["not-your-stream"], 404: ["stream-not-found"]})
async def unpin_product(request: web.Request) -> web.Response:
    account = await require_account(request)
    stream_id = path_id(request, "stream-not-found", "stream")
    return json_response(await pins.set_pin(_merch(request), account, stream_id, None))


def add_routes(app: web.Application) -> None:
    app.setdefault(SCHEMA_FILLERS, {})["product-price-floors"] = lambda: price_floors(app[COMMERCE].merch)
    app.router.add_get("/api/base-items", base_items)
    app.router.add_post("/api/designs", upload_design)
    app.router.add_post("/api/products", create_product)
    app.router.add_get("/api/products/{id}", get_product)
    app.router.add_get("/api/products/{id}/mockups/{variant_id}", product_mockup)
    app.router.add_get("/api/users/{id}/products", user_products)
    app.router.add_post("/api/streams/{id}/pin", pin_product)
    app.router.add_delete("/api/streams/{id}/pin", unpin_product)
