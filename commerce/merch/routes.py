"""HTTP routes for merch: the base-item catalogue, design uploads, products and their mockups, room pins."""

from __future__ import annotations

from aiohttp import BodyPartReader, web
from pydantic import BaseModel, Field

from commerce.merch import designs, pins, products
from commerce.merch.service import Merch
from commerce.requests import COMMERCE
from livecore.accounts.session import require_account
from livecore.http import Problem, json_response, operation, parse_body, path_id

UPLOAD_CHUNK_BYTES = 64 * 1024


class NewProduct(BaseModel):
    design_id: int = Field(gt=0)
    base_item_id: str = Field(max_length=50)
    title: str = Field(min_length=1, max_length=120)
    price_cents: int = Field(gt=0, le=100_000_000, description="one price for every variant offered")
    variant_ids: list[str] | None = Field(default=None, max_length=100,
                                          description="the variants to offer; all of the base item's when absent")
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=100)


class Pin(BaseModel):
    product_id: int = Field(gt=0)


def _merch(request: web.Request) -> Merch:
    return request.app[COMMERCE].merch


@operation("The print-on-demand catalogue: base items, their print areas and variants with base costs", tag="merch")
async def base_items(request: web.Request) -> web.Response:
    return json_response({"items": [item.public() for item in _merch(request).items.values()]})


@operation("Upload a design (multipart/form-data, one file field `file`, PNG or JPEG; creators)", status=201,
           auth=True, tag="merch",
           responses={200: "The same image was uploaded before: that design", 400: "No file, or a malformed body",
                      403: "Not a creator", 413: "Over design_bytes_max or design_pixels_max",
                      415: "Not a PNG or JPEG", 422: "Corrupt, truncated or under design_edge_px_min",
                      503: "Too many images being processed (image_queue_max)"})
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
           body=NewProduct, status=201, auth=True, tag="merch",
           responses={200: "A retry with the same idempotency key: the first product", 403: "Not a creator",
                      404: "No such design (of yours) or base item", 409: "Over products_per_creator_max",
                      422: "The price is under the floor (price-below-floor names floor_cents)",
                      503: "Too many images being processed (image_queue_max)"})
async def create_product(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await parse_body(request, NewProduct)
    key = body.idempotency_key or request.headers.get("Idempotency-Key", "").strip()[:100] or None
    view, created = await products.create_product(_merch(request), account, body.design_id, body.base_item_id,
                                                  body.title, body.price_cents, body.variant_ids, key)
    return json_response(view, status=201 if created else 200)


@operation("A product with its variants, prices and mockup URLs", tag="merch", responses={404: "No such product"})
async def get_product(request: web.Request) -> web.Response:
    product_id = path_id(request, "product-not-found", "product")
    return json_response(await products.get_product(_merch(request).pool, product_id))


@operation("A product variant's mockup (JPEG)", tag="merch", responses={404: "No such product or variant"})
async def product_mockup(request: web.Request) -> web.Response:
    product_id = path_id(request, "product-not-found", "product")
    image = await products.mockup_image(_merch(request), product_id, request.match_info["variant_id"])
    return web.Response(body=image, content_type="image/jpeg",
                        headers={"Cache-Control": "public, max-age=86400, immutable"})


@operation("A creator's shop: their products, newest first (?before=<product id> for the next page)", tag="merch",
           responses={400: "A malformed cursor", 404: "No such user"})
async def user_products(request: web.Request) -> web.Response:
    merch = _merch(request)
    creator_id = path_id(request, "user-not-found", "user")
    before = request.query.get("before")
    if before is not None and not (before.isdigit() and len(before) <= 18):
        raise Problem(400, "invalid-field", "before must be a product id", field="before")
    if await merch.node.accounts.get(creator_id) is None:
        raise Problem(404, "user-not-found", f"there is no user {creator_id}")
    limit = merch.settings.products_listed_max
    found = await products.list_products(merch.pool, creator_id, int(before) if before else None, limit)
    return json_response({"products": found, "next_before": found[-1]["id"] if len(found) == limit else None})


@operation("Pin one of your products in your live room (room event product_pinned)", body=Pin, auth=True,
           tag="merch", responses={403: "Not your stream or not your product", 404: "No such stream or product"})
async def pin_product(request: web.Request) -> web.Response:
    account = await require_account(request)
    body = await parse_body(request, Pin)
    stream_id = path_id(request, "stream-not-found", "stream")
    return json_response(await pins.set_pin(_merch(request), account, stream_id, body.product_id))


@operation("Unpin the product in your live room (room event product_pinned with product null)", auth=True,
           tag="merch", responses={403: "Not your stream", 404: "No such stream"})
async def unpin_product(request: web.Request) -> web.Response:
    account = await require_account(request)
    stream_id = path_id(request, "stream-not-found", "stream")
    return json_response(await pins.set_pin(_merch(request), account, stream_id, None))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/base-items", base_items)
    app.router.add_post("/api/designs", upload_design)
    app.router.add_post("/api/products", create_product)
    app.router.add_get("/api/products/{id}", get_product)
    app.router.add_get("/api/products/{id}/mockups/{variant_id}", product_mockup)
    app.router.add_get("/api/users/{id}/products", user_products)
    app.router.add_post("/api/streams/{id}/pin", pin_product)
    app.router.add_delete("/api/streams/{id}/pin", unpin_product)
