"""Merch over HTTP: the catalogue, design uploads (and the files they refuse), products at or above their floor,
mockups per colour, the shop listing, and pinning a product in a live room."""

from __future__ import annotations

import io

from images import design_jpeg, design_png, gif, png_bomb, upload
from money import api, key
from PIL import Image
from roomclient import events_until

FEE_PERCENT, FEE_FIXED = 10, 30  # the defaults


def floor(base_cost_cents: int) -> int:
    return -(-(base_cost_cents + FEE_FIXED) * 100 // (100 - FEE_PERCENT))


async def _designs_of(node, creator_id: int) -> int:  # type: ignore[no-untyped-def]
    return await node.node.pool.fetchval("SELECT count(*) FROM designs WHERE creator_id = $1", creator_id)


async def _product(node, token: str, price_cents: int, **extra) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    status, design = await upload(node, token, design_png())
    assert status in (200, 201), design
    return await api(node, "POST", "/api/products", token, {
        "design_id": design["id"], "base_item_id": "tshirt", "title": "Logo tee", "price_cents": price_cents,
        **extra})


async def test_the_catalogue_lists_base_items_with_variants_and_costs(node) -> None:  # type: ignore[no-untyped-def]
    status, body = await api(node, "GET", "/api/base-items")
    assert status == 200
    items = {item["id"]: item for item in body["items"]}
    assert {"tshirt", "hoodie", "mug", "poster", "phone_case"} <= set(items)
    tee = items["tshirt"]
    assert tee["print_area"]["width_px"] > 0 and len(tee["variants"]) == 5 * 4
    large_black = next(v for v in tee["variants"] if v["id"] == "tshirt-l-black")
    assert (large_black["size"], large_black["colour"], large_black["base_cost_cents"]) == ("L", "black", 1295)
    assert all(v["colour"] is None for v in items["poster"]["variants"])


async def test_a_design_upload_is_checked_and_kept_once(node) -> None:  # type: ignore[no-untyped-def]
    creator = await node.signup()
    png = design_png(500, 250)
    status, first = await upload(node, creator["token"], png)
    assert status == 201, first
    assert (first["width"], first["height"], first["format"]) == (500, 250, "PNG")
    status, again = await upload(node, creator["token"], png)
    assert status == 200 and again["id"] == first["id"]
    status, jpeg = await upload(node, creator["token"], design_jpeg(), "image/jpeg")
    assert status == 201 and jpeg["format"] == "JPEG" and jpeg["id"] != first["id"]
    assert await _designs_of(node, creator["id"]) == 2


async def test_bad_design_files_get_a_problem_and_change_nothing(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = await node_factory(design_bytes_max=200_000)
    creator = await node.signup()
    viewer = await node.signup(roles=["viewer"])
    good = design_png()
    cases = [
        (creator, good + b"\x00" * 200_000, "image/png", 413, "design-too-large"),
        (creator, good[: len(good) // 2], "image/png", 422, "corrupt-image"),
        (creator, png_bomb(6_000, 6_000), "image/png", 413, "design-too-many-pixels"),  # over ours
        (creator, png_bomb(20_000, 20_000), "image/png", 413, "design-too-many-pixels"),  # over Pillow's too
        (creator, gif(), "image/gif", 415, "unsupported-image"),
        (creator, b"just some text, not an image at all", "image/png", 415, "unsupported-image"),
        (creator, good, "image/jpeg", 415, "unsupported-image"),
        (creator, design_png(40, 400), "image/png", 422, "design-too-small"),
        (viewer, good, "image/png", 403, "not-a-creator"),
    ]
    for who, data, content_type, status_expected, slug in cases:
        status, problem = await upload(node, who["token"], data, content_type)
        assert (status, problem["type"]) == (status_expected, f"livecore:{slug}"), (slug, problem)
        assert problem["detail"] and problem["status"] == status_expected
    status, problem = await upload(node, creator["token"], good, field="picture")
    assert status == 400 and problem["type"] == "livecore:file-required"
    status, problem = await api(node, "POST", "/api/designs", creator["token"], {"file": "not multipart"})
    assert status == 415
    oversize = await upload(node, creator["token"], good + b"\x00" * 200_000)
    assert oversize[1]["rule"] == "design_bytes_max" and oversize[1]["limit_value"] == 200_000
    bomb = await upload(node, creator["token"], png_bomb(6_000, 6_000))
    assert bomb[1]["rule"] == "design_pixels_max" and bomb[1]["width"] == 6_000 and len(png_bomb(6_000, 6_000)) < 50_000
    assert await _designs_of(node, creator["id"]) == 0


async def test_a_price_below_base_cost_plus_fees_names_the_floor(node) -> None:  # type: ignore[no-untyped-def]
    creator = await node.signup()
    two_xl_floor = floor(1495)  # the dearest t-shirt variant sets the floor of a product offering all sizes
    status, problem = await _product(node, creator["token"], two_xl_floor - 1)
    assert status == 422 and problem["type"] == "livecore:price-below-floor"
    assert problem["floor_cents"] == two_xl_floor and problem["variant_id"].startswith("tshirt-2xl")
    assert str(two_xl_floor) in problem["detail"]
    status, small_only = await _product(node, creator["token"], floor(1295),
                                        variant_ids=["tshirt-s-black", "tshirt-m-black"])
    assert status == 201, small_only
    assert [v["id"] for v in small_only["variants"]] == ["tshirt-s-black", "tshirt-m-black"]
    status, everything = await _product(node, creator["token"], two_xl_floor)
    assert status == 201 and len(everything["variants"]) == 20
    assert await node.node.pool.fetchval("SELECT count(*) FROM products WHERE creator_id = $1", creator["id"]) == 2


async def test_mockups_are_drawn_per_colour_and_served_as_jpeg(node) -> None:  # type: ignore[no-untyped-def]
    creator = await node.signup()
    status, product = await _product(node, creator["token"], 2500, idempotency_key=key())
    assert status == 201, product
    urls = {v["id"]: v["mockup_url"] for v in product["variants"]}
    images = {}
    for variant_id in ("tshirt-s-black", "tshirt-xl-black", "tshirt-s-white"):
        async with node.http.get(node.url + urls[variant_id]) as response:
            assert response.status == 200 and response.content_type == "image/jpeg"
            images[variant_id] = await response.read()
    assert images["tshirt-s-black"] == images["tshirt-xl-black"]  # sizes look alike: drawn once
    assert images["tshirt-s-black"] != images["tshirt-s-white"]
    black = Image.open(io.BytesIO(images["tshirt-s-black"]))
    white = Image.open(io.BytesIO(images["tshirt-s-white"]))
    assert black.format == "JPEG" and black.size == (600, 600)
    hem = (300, 540)  # on the shirt, below the print area
    assert sum(black.getpixel(hem)) < 120 and sum(white.getpixel(hem)) > 650
    centre_of_circle = (round((335 + 0.35 * 330) * 0.6), round((290 + 440 / 2) * 0.6))
    red, green, _blue = black.convert("RGB").getpixel(centre_of_circle)
    assert red > 180 and green < 100  # the design is on the shirt
    assert await node.node.pool.fetchval(
        "SELECT count(*) FROM mockups WHERE design_id = $1", product["design_id"]) == 4  # one per colour
    status, missing = await api(node, "GET", f"/api/products/{product['id']}/mockups/mug-11oz-white")
    assert status == 404 and missing["type"] == "livecore:mockup-not-found"


async def test_a_retried_product_is_made_once_and_the_shop_lists_it(node) -> None:  # type: ignore[no-untyped-def]
    creator = await node.signup()
    other = await node.signup()
    body_key = key()
    status, first = await _product(node, creator["token"], 3000, idempotency_key=body_key)
    assert status == 201
    status, again = await _product(node, creator["token"], 3000, idempotency_key=body_key)
    assert status == 200 and again["id"] == first["id"]
    status, shop = await api(node, "GET", f"/api/users/{creator['id']}/products")
    assert status == 200 and [p["id"] for p in shop["products"]] == [first["id"]]
    status, got = await api(node, "GET", f"/api/products/{first['id']}")
    assert got == first
    status, design = await upload(node, creator["token"], design_jpeg(), "image/jpeg")
    status, problem = await api(node, "POST", "/api/products", other["token"], {
        "design_id": design["id"], "base_item_id": "mug", "title": "Not mine", "price_cents": 5000})
    assert status == 404 and problem["type"] == "livecore:design-not-found"
    status, problem = await api(node, "POST", "/api/products", creator["token"], {
        "design_id": design["id"], "base_item_id": "socks", "title": "Socks", "price_cents": 5000})
    assert status == 404 and problem["type"] == "livecore:base-item-not-found"
    status, problem = await api(node, "GET", "/api/users/999999999/products")
    assert status == 404


async def test_pinning_a_product_reaches_the_room_and_every_new_snapshot(node) -> None:  # type: ignore[no-untyped-def]
    creator = await node.signup()
    stream = await node.create_stream(creator["token"])
    viewer = await node.signup()
    status, product = await _product(node, creator["token"], 2500)
    socket = await node.ws(stream["id"], viewer["token"])
    first = await events_until(socket, lambda evs: any(e["type"] == "snapshot" for e in evs))
    assert first[0]["pinned"] is None
    path = f"/api/streams/{stream['id']}/pin"
    status, pinned = await api(node, "POST", path, creator["token"], {"product_id": product["id"]})
    assert status == 200 and pinned["product"]["id"] == product["id"]
    seen = await events_until(socket, lambda evs: any(e["type"] == "product_pinned" for e in evs))
    event = next(e for e in seen if e["type"] == "product_pinned")
    assert event["product"]["id"] == product["id"] and event["seq"] > 0
    assert event["product"]["variants"][0]["mockup_url"]
    late = await node.ws(stream["id"])
    snapshot = (await events_until(late, lambda evs: any(e["type"] == "snapshot" for e in evs)))[0]
    assert snapshot["pinned"]["id"] == product["id"]
    status, problem = await api(node, "POST", path, viewer["token"], {"product_id": product["id"]})
    assert status == 403 and problem["type"] == "livecore:not-your-stream"
    other = await node.signup()
    status, theirs = await _product(node, other["token"], 2500)
    status, problem = await api(node, "POST", path, creator["token"], {"product_id": theirs["id"]})
    assert status == 403 and problem["type"] == "livecore:not-your-product"
    status, unpinned = await api(node, "DELETE", path, creator["token"])
    assert status == 200 and unpinned["product"] is None
    seen = await events_until(socket, lambda evs: any(e["type"] == "product_pinned" for e in evs))
    assert next(e for e in seen if e["type"] == "product_pinned")["product"] is None
    fresh = await node.ws(stream["id"])
    assert (await events_until(fresh, lambda evs: any(e["type"] == "snapshot" for e in evs)))[0]["pinned"] is None
