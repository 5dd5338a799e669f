"""`GET /api/openapi.json` (livecore/openapi.py) and what the fuzzer cannot reach: the document is built from the
validating models and the node's settings, 405s name exactly the path's methods, every problem the code raises is
documented, the WebSocket upgrade answers as described, and inputs that used to crash the node are refused."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import stripe
from aiohttp import web
from apidoc import api_document, assert_documented
from livenode import NodeFactory, RunningNode
from PIL import Image
from standardwebhooks.webhooks import Webhook

from commerce import COMMERCE, schemas
from commerce.auctions import schemas as auction_schemas
from commerce.merch import schemas as merch_schemas
from commerce.providers import SUCCEEDING_CARD
from livecore.clock import ManualClock
from livecore.http import BIGINT_MAX, PROBLEM_TYPE, operation
from livecore.openapi import build_spec
from signaling import protocol

ROOT = Path(__file__).resolve().parent.parent
# Problems the plumbing makes on its own, never an operation's answer: a bug, and an aiohttp error without a slug.
NOT_AN_OPERATION_ANSWER = {(500, "internal"), (405, "method-not-allowed")}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_405_names_exactly_the_methods_the_path_serves(node: RunningNode) -> None:
    for method, path, allow in [("GET", "/api/accounts", "POST"), ("PUT", "/api/accounts", "POST"),
                                ("GET", "/api/sessions", "DELETE, POST"), ("POST", "/api/live", "GET, HEAD"),
                                ("DELETE", "/api/streams/7", "GET, HEAD"), ("GET", "/api/payouts/webhook", "POST"),
                                ("PUT", "/whip/7", "OPTIONS, POST"), ("GET", "/whep/7/s", "DELETE, OPTIONS, PATCH"),
                                ("POST", "/", "GET, HEAD"), ("DELETE", "/static/app.css", "GET, HEAD")]:
        async with node.http.request(method, node.url + path) as r:
            problem = await r.json(content_type=None)
            assert r.status == 405 and r.headers["Allow"] == allow, (method, path, r.headers.get("Allow"))
            assert r.content_type == PROBLEM_TYPE and problem["type"] == "livecore:method-not-allowed"
            assert method in problem["detail"] and allow in problem["detail"]


async def test_the_document_is_built_from_the_models_and_this_nodes_settings(node_factory: NodeFactory) -> None:
    node = await node_factory(payout_cents_min=1234, gift_count_per_send_max=7)
    spec = await api_document(node.http, node.url)
    schemas = spec["components"]["schemas"]
    amount = schemas["NewPayout"]["properties"]["amount_cents"]
    assert amount["minimum"] == 1234 and amount["x-minimum-setting"] == "payout_cents_min"
    assert schemas["NewGift"]["properties"]["count"]["maximum"] == 7
    assert schemas["SignUp"]["properties"]["roles"]["items"]["enum"] == ["viewer", "creator", "advertiser"]
    for keyed in ("NewPurchase", "NewGift", "NewPayout"):
        assert "idempotency_key" in schemas[keyed]["required"]
    for path in ("/api/payments/webhook", "/api/payouts/webhook"):
        [signature] = spec["paths"][path]["post"]["parameters"]
        assert signature["in"] == "header" and signature["name"] == "Stripe-Signature" and signature["required"]
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            for parameter in op.get("parameters", []):
                if parameter["name"] == "id":
                    assert parameter["schema"]["type"] == "integer", (method, path)
                    assert (parameter["schema"]["minimum"], parameter["schema"]["maximum"]) == (1, BIGINT_MAX)
            for status, answer in op["responses"].items():
                if int(status) >= 400 and (path, status) != ("/readyz", "503"):
                    assert list(answer["content"]) == [PROBLEM_TYPE], (method, path, status)
                    assert answer["content"][PROBLEM_TYPE]["schema"]["properties"]["type"]["enum"]
    mark = {p["name"]: p for p in spec["paths"]["/whep/{id}"]["post"]["parameters"] if p["in"] == "header"}
    assert {"X-Livecore-Node", "X-Livecore-Node-Proof"} <= set(mark) and not mark["X-Livecore-Node"]["required"]
    assert all(p["description"].startswith("internal:") for p in mark.values())
    floors = {branch["properties"]["base_item_id"]["const"]: branch["properties"]
              for branch in schemas["NewProduct"]["oneOf"]}
    mug = node.app[COMMERCE].merch.items["mug"]
    assert set(floors["mug"]["variant_ids"]["anyOf"][0]["items"]["enum"]) == {v.id for v in mug.variants}
    assert floors["mug"]["price_cents"]["minimum"] == node.app[COMMERCE].merch.fees.floor_cents(
        max(v.base_cost_cents for v in mug.variants))
    assert schemas["NewPaymentMethod"]["required"] == ["card_number"]  # the local test provider's node
    auction = schemas["NewAuction"]["properties"]
    assert auction["duration_s"]["maximum"] == node.node.settings.auction_duration_s_max
    assert auction["increments"]["maxItems"] == node.node.settings.auction_increment_steps_max
    auth = _auth((await node.signup())["token"])
    for amount_cents, refused in ((1233, True), (1234, False)):  # just outside and at the documented minimum
        async with node.http.post(f"{node.url}/api/payouts", headers=auth,
                                  json={"amount_cents": amount_cents, "idempotency_key": f"k{amount_cents}"}) as r:
            problem = await assert_documented(spec, "POST", "/api/payouts", r)
            assert (r.status == 400 and problem and problem["type"] == "livecore:rule-payout-minimum") is refused


async def test_the_websocket_is_described_as_the_upgrade_it_is(node: RunningNode) -> None:
    spec = await api_document(node.http, node.url)
    op = spec["paths"]["/ws/rooms/{id}"]["get"]
    headers = {p["name"]: p for p in op["parameters"] if p["in"] == "header"}
    assert {n for n, p in headers.items() if p["required"]} == {
        "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version"}
    assert headers["Sec-WebSocket-Protocol"]["schema"]["enum"] == list(protocol.SUBPROTOCOLS)
    assert "101" in op["responses"] and "Sec-WebSocket-Accept" in op["responses"]["101"]["headers"]
    assert {"bearer", "cookie", "query_token"} <= {name for scheme in op["security"] for name in scheme}
    assert {} in op["security"]  # viewers may watch without an account
    creator = await node.signup()
    stream = await node.create_stream(creator["token"])
    room = f"{node.url}/ws/rooms/{stream['id']}"
    socket = await node.ws(stream["id"], creator["token"], protocol.MSGPACK)  # 101 and the subprotocol
    assert socket.protocol == protocol.MSGPACK
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    answers = [
        (room, {}, 426, "websocket-required"),  # a plain GET
        (room, {**upgrade, "Sec-WebSocket-Protocol": "chat"}, 426, "websocket-required"),
        (room + "?since=e:%C2%B2", upgrade, 400, "bad-since"),  # a superscript two is a digit, not an ASCII one
        (room + "?token=forged", upgrade, 401, "bad-token"),
        (f"{node.url}/ws/rooms/{stream['id'] + 1000}", upgrade, 404, "stream-not-found"),
    ]
    for url, sent, status, slug in answers:
        async with node.http.get(url, headers=sent) as r:
            problem = await assert_documented(spec, "GET", "/ws/rooms/{id}", r)
            assert r.status == status and problem and problem["type"] == f"livecore:{slug}", (url, sent, problem)
            assert status != 426 or r.headers["Upgrade"] == "websocket"


async def test_options_and_cors_headers_answer_as_documented(node_factory: NodeFactory) -> None:
    """WHIP/WHEP OPTIONS (with and without the stream key, as preflights) and the CORS headers of each rule, on a node
    whose origins are settings: what the fuzzer never sends (an Origin) is checked here."""
    ice = {"media_ice_servers": "stun:stun.example.net:3478", "api_cors_origins": "https://app.example",
           "ingest_cors_origins": "https://studio.example"}
    node = await node_factory(**ice)
    spec = await api_document(node.http, node.url)
    whip, whep = spec["paths"]["/whip/{id}"], spec["paths"]["/whip/{id}/{session}"]
    assert whip["post"]["security"] == [{"stream_key": []}] and {} in whip["options"]["security"]
    assert whep["patch"]["security"] == whep["delete"]["security"] == [{"stream_key": []}]
    assert "If-Match" in {p["name"] for p in whep["patch"]["parameters"]}
    origin = spec["paths"]["/api/live"]["get"]["responses"]["200"]["headers"]["Access-Control-Allow-Origin"]
    assert origin["schema"]["enum"] == ["https://app.example"] and not origin["required"]
    playback = spec["paths"]["/whep/{id}"]["post"]["responses"]["201"]["headers"]["Access-Control-Allow-Origin"]
    assert playback["schema"]["enum"] == ["*"] and playback["required"]  # open to all: on every answer
    assert "Access-Control-Allow-Origin" not in spec["paths"]["/ws/rooms/{id}"]["get"]["responses"]["101"].get(
        "headers", {})
    creator = await node.signup(roles=["creator"])
    stream = await node.create_stream(creator["token"], live=False)
    key = {"Authorization": f"Bearer {stream['stream_key']}"}
    studio, app = {"Origin": "https://studio.example"}, {"Origin": "https://app.example"}
    preflight = {"Access-Control-Request-Method": "POST"}
    sid = stream["id"]
    answers = [
        ("OPTIONS", "/whip/{id}", f"/whip/{sid}", {}, 204),
        ("OPTIONS", "/whip/{id}", f"/whip/{sid}", {**key, **studio, **preflight}, 204),
        ("OPTIONS", "/whip/{id}", "/whip/0", {}, 404),
        ("OPTIONS", "/whep/{id}", f"/whep/{sid}", {"Origin": "https://a.example", **preflight}, 204),
        ("OPTIONS", "/whip/{id}/{session}", f"/whip/{sid}/s", studio, 204),
        ("OPTIONS", "/whep/{id}/{session}", f"/whep/{sid}/s", {}, 204),
        ("POST", "/whip/{id}", f"/whip/{sid}", studio, 401),
        ("DELETE", "/whip/{id}/{session}", f"/whip/{sid}/s", {**key, **studio}, 404),
        ("PATCH", "/whip/{id}/{session}", f"/whip/{sid}/s", {"Authorization": "Bearer sk_wrong"}, 401),
        ("PATCH", "/whep/{id}/{session}", f"/whep/{sid}/s", {"If-Match": "not an entity tag"}, 404),
        ("GET", "/hls/{id}/{name}", f"/hls/{sid}/seg000001.ts", {"Origin": "https://b.example"}, 404),
        ("GET", "/api/live", "/api/live", app, 200),
        ("GET", "/api/streams/{id}/ingest", f"/api/streams/{sid}/ingest",
         {**app, "Authorization": f"Bearer {creator['token']}"}, 200),
        ("GET", "/api/streams/{id}/ingest", f"/api/streams/{sid}/ingest", app, 401),
        ("GET", "/api/live", "/api/live", studio, 200),
        ("OPTIONS", "/whip/{id}", f"/whip/{sid}", {**app, **preflight}, 204),
    ]
    for method, path, url, headers, status in answers:
        async with node.http.request(method, node.url + url, headers=headers) as r:
            await assert_documented(spec, method, path, r)
            assert r.status == status, (method, url, await r.text())
            allowed = url.startswith(("/whep/", "/hls/")) or headers.get("Origin") == {
                "/api/": "https://app.example", "/whip": "https://studio.example"}[url[:5]]
            assert allowed == ("Access-Control-Allow-Origin" in r.headers), (method, url, headers)
            if method == "OPTIONS" and "/whip/" in url and r.status == 204:
                assert ("Link" in r.headers) == ("Authorization" in headers)  # TURN only for the publisher


async def test_pages_and_assets_answer_as_documented(node: RunningNode) -> None:
    spec = await api_document(node.http, node.url)
    page = spec["paths"]["/watch.html"]["get"]["responses"]["200"]
    assert list(page["content"]) == ["text/html"] and page["headers"]["Content-Security-Policy"]["required"]
    asset = spec["paths"]["/static/{path}"]["get"]
    assert {"text/css", "image/svg+xml"} <= set(asset["responses"]["200"]["content"])
    assert "content" not in asset["responses"]["304"]
    for url, path, status in [("/", "/", 200), ("/watch.html?room=1", "/watch.html", 200),
                              ("/static/app.css", "/static/{path}", 200), ("/static/js/api.js", "/static/{path}", 200),
                              ("/static/icons/like.svg", "/static/{path}", 200),
                              ("/static/nope.css", "/static/{path}", 404)]:
        async with node.http.get(node.url + url, headers={"Authorization": "Bearer forged"}) as r:
            await assert_documented(spec, "GET", path, r)
            assert r.status == status, url  # a page shows a forged session signed out
            etag = r.headers.get("ETag")
        if path == "/static/{path}" and etag:
            async with node.http.get(node.url + url, headers={"If-None-Match": etag}) as r:
                await assert_documented(spec, "GET", path, r)
                assert r.status == 304


async def test_birth_dates_are_documented_up_to_the_nodes_today(node_factory: NodeFactory) -> None:
    clock = ManualClock()
    node = await node_factory(clock=clock)
    today = dt.datetime.fromtimestamp(clock.now_s(), tz=dt.UTC).date()
    for _ in range(2):
        spec = await api_document(node.http, node.url)
        pattern = re.compile(spec["components"]["schemas"]["SignUp"]["properties"]["birth_date"]["pattern"])
        tomorrow = today + dt.timedelta(days=1)
        assert pattern.match(today.isoformat()) and pattern.match("1900-02-28")
        assert not pattern.match(tomorrow.isoformat()) and not pattern.match("0000-01-01")
        for birth_date, status in ((tomorrow, 400), (today, 201)):
            body = {"username": f"born{birth_date:%Y%m%d}", "password": "long enough", "region": "US",
                    "birth_date": birth_date.isoformat()}
            async with node.http.post(f"{node.url}/api/accounts", json=body) as r:
                assert r.status == status
        clock.advance(366 * 86400)
        today = dt.datetime.fromtimestamp(clock.now_s(), tz=dt.UTC).date()


_RAISED = re.compile(r'Problem\(\s*(\d{3}),\s*"([a-z0-9-]+)"')
_PAIRED = re.compile(r'(?:refusal\b.*= |\{|, )\(?(\d{3})[:,] "([a-z0-9-]+)"')  # refusal = (426, "..."), {413: "..."}
_TABLED = re.compile(r'"([a-z0-9-]+)": \((\d{3}),')  # a table of refusals: "slug": (status, detail)


def _raised_problems() -> set[tuple[int, str]]:
    """(status, slug) of every `Problem(...)` the code raises with literal values."""
    found = set()
    for folder in ("livecore", "signaling", "commerce", "feeds", "editor", "ads", "webui"):
        for source in (ROOT / folder).rglob("*.py"):
            text = source.read_text()
            found |= {(int(status), slug) for status, slug in re.findall(_RAISED, text) + re.findall(_PAIRED, text)}
            found |= {(int(status), slug) for slug, status in re.findall(_TABLED, text)}
    return found


async def test_every_problem_the_code_raises_is_documented(node: RunningNode) -> None:
    spec = await api_document(node.http, node.url)
    documented = set()
    for operations in spec["paths"].values():
        for op in operations.values():
            for status, answer in op["responses"].items():
                schema = answer.get("content", {}).get(PROBLEM_TYPE, {}).get("schema", {})
                for problem_type in schema.get("properties", {}).get("type", {}).get("enum", []):
                    documented.add((int(status), problem_type.removeprefix("livecore:")))
    raised = _raised_problems()
    assert len(raised) > 50  # the scan finds them
    assert raised - NOT_AN_OPERATION_ANSWER - documented == set()


def test_a_route_without_a_description_is_named() -> None:
    @operation("Described")
    async def described(request: web.Request) -> web.Response:
        return web.Response()

    async def undescribed(request: web.Request) -> web.Response:
        return web.Response()

    app = web.Application()
    app.router.add_get("/api/described", described)
    app.router.add_post("/api/undescribed", undescribed)
    with pytest.raises(LookupError, match="POST /api/undescribed has no @operation"):
        build_spec(app)


async def test_inputs_that_crashed_the_node_are_refused_as_documented(node: RunningNode) -> None:
    """What the fuzzer found: NUL in stored text, integers past 64 bits, a payout too big to price in diamonds,
    and a signed webhook whose `data` is not an object were 500s."""
    spec = await api_document(node.http, node.url)
    creator = await node.signup()
    stream = await node.create_stream(creator["token"])
    auth = _auth(creator["token"])
    signup = {"username": "nul_display", "password": "long enough", "birth_date": "1990-01-01", "region": "US"}
    secret = (await node.node.gifts.webhook_secrets())[0]  # type: ignore[union-attr]
    payload = orjson.dumps({"id": "evt_1", "type": "charge.refunded", "data": [1]})
    signature = stripe.WebhookSignature.generate_signature_header(payload.decode(), secret,
                                                                 timestamp=int(node.node.clock.now_s()))
    cases = [
        ("POST", "/api/accounts", {}, {**signup, "display_name": "a\x00b"}, 400),
        ("POST", "/api/accounts", {}, {**signup, "interests": ["\x00"]}, 400),
        ("POST", "/api/streams", auth, {"title": "live\x00"}, 400),
        ("POST", "/api/rooms/{id}/moderators", auth, {"user_id": 2**63}, 400),
        ("POST", "/api/streams/{id}/gifts", auth, {"gift_id": "rose", "idempotency_key": "k\x00"}, 400),
        ("POST", "/api/payouts", auth, {"amount_cents": 2**62, "idempotency_key": "huge"}, 402),
        ("POST", "/api/payouts", auth, {"amount_cents": 2**64, "idempotency_key": "huger"}, 400),
    ]
    for method, path, headers, body, status in cases:
        async with node.http.request(method, node.url + path.replace("{id}", str(stream["id"])), json=body,
                                     headers=headers) as r:
            await assert_documented(spec, method, path, r)
            assert r.status == status, (path, body, await r.text())
    for path in ("/api/payments/webhook", "/api/payouts/webhook"):
        async with node.http.post(node.url + path, data=payload, headers={"Stripe-Signature": signature}) as r:
            problem = await assert_documented(spec, "POST", path, r)
            assert r.status == 400 and problem and problem["type"] == "livecore:malformed-event"


async def test_a_signed_webhook_without_its_signature_header_is_refused(node: RunningNode, http: aiohttp.ClientSession
                                                                         ) -> None:
    spec = await api_document(http, node.url)
    for path in ("/api/payments/webhook", "/api/payouts/webhook"):
        async with http.post(node.url + path, json={"id": "evt_1", "type": "x"}) as r:
            problem = await assert_documented(spec, "POST", path, r)
            assert r.status == 400 and problem and problem["type"] == "livecore:bad-signature"


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), (200, 30, 90, 255)).save(out, "PNG")
    return out.getvalue()


async def test_design_uploads_answer_as_documented(node: RunningNode) -> None:
    """What the fuzzer cannot send: a design's validity (a decodable PNG or JPEG, at least design_edge_px_min on a
    side) is no JSON Schema, so each answer of the multipart upload is checked here."""
    spec = await api_document(node.http, node.url)
    upload = spec["paths"]["/api/designs"]["post"]
    file = upload["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["file"]
    assert file["format"] == "binary" and upload["requestBody"]["content"]["multipart/form-data"]["schema"][
        "required"] == ["file"]
    creator = _auth((await node.signup(roles=["creator"]))["token"])
    viewer = _auth((await node.signup(roles=["viewer"]))["token"])
    design = _png(200, 120)

    def form(data: bytes | None, name: str = "file") -> aiohttp.FormData:
        sent = aiohttp.FormData(default_to_multipart=True)
        if data is not None:
            sent.add_field(name, data, filename="design.png", content_type="image/png")
        else:
            sent.add_field("note", "no file here")
        return sent

    cases = [
        (creator, form(design), 201, None), (creator, form(design), 200, None),  # the same image again
        (viewer, form(design), 403, "not-a-creator"), ({}, form(design), 401, "unauthenticated"),
        (creator, form(_png(10, 10)), 422, "design-too-small"), (creator, form(b"GIF89a not a png"), 415,
                                                                  "unsupported-image"),
        (creator, form(_png(200, 120)[:60]), 422, "corrupt-image"), (creator, form(b""), 400, "file-required"),
        (creator, form(None), 400, "file-required"), (creator, {"file": "x"}, 415, "unsupported-media-type"),
    ]
    for headers, body, status, slug in cases:
        sent = {"json": body} if isinstance(body, dict) else {"data": body}
        async with node.http.post(f"{node.url}/api/designs", headers=headers, **sent) as r:
            problem = await assert_documented(spec, "POST", "/api/designs", r)
            assert r.status == status, (status, slug, await r.text())
            assert (problem or {}).get("type") == (f"livecore:{slug}" if slug else None)


async def test_a_live_auction_answers_as_documented(node: RunningNode) -> None:
    """What the fuzzer's world has no live auction for: a product, a pin, a saved card, an auction, a bid, a refused
    bid and buy-it-now each answer with a documented status and the model the document names (strictly)."""
    spec = await api_document(node.http, node.url)
    creator = _auth((await node.signup(roles=["creator"]))["token"])
    bidder = _auth((await node.signup(roles=["viewer"]))["token"])
    stream = await node.create_stream(creator["Authorization"].removeprefix("Bearer "))
    sent = aiohttp.FormData(default_to_multipart=True)
    sent.add_field("file", _png(256, 256), filename="design.png", content_type="image/png")

    async def call(method: str, path: str, url: str, headers: dict[str, str], status: int, model: Any,
                   **body: Any) -> dict[str, Any]:
        async with node.http.request(method, node.url + url, headers=headers, **body) as r:
            problem = await assert_documented(spec, method, path, r)
            answer = await r.json(content_type=None)
            assert r.status == status, (url, answer)
            if problem is None:
                model.model_validate(answer, strict=True)
            return answer

    design = await call("POST", "/api/designs", "/api/designs", creator, 201, merch_schemas.DesignView, data=sent)
    product = await call("POST", "/api/products", "/api/products", creator, 201, merch_schemas.ProductView,
                         json={"design_id": design["id"], "base_item_id": "mug", "title": "a mug",
                               "price_cents": 5_000, "idempotency_key": "mug"})
    await call("GET", "/api/products/{id}", f"/api/products/{product['id']}", {}, 200, merch_schemas.ProductView)
    await call("POST", "/api/streams/{id}/pin", f"/api/streams/{stream['id']}/pin", creator, 200,
               merch_schemas.PinView, json={"product_id": product["id"]})
    terms = {"product_id": product["id"], "variant_id": product["variants"][0]["id"], "start_cents": 5_000,
             "duration_s": 60, "buy_now_cents": 20_000}
    auction = await call("POST", "/api/streams/{id}/auctions", f"/api/streams/{stream['id']}/auctions", creator, 201,
                         auction_schemas.AuctionView, json=terms)
    bids = f"/api/auctions/{auction['id']}/bids"
    await call("POST", "/api/auctions/{id}/bids", bids, bidder, 402, None,
               json={"amount_cents": 5_000, "idempotency_key": "b0"})  # no saved card yet
    await call("POST", "/api/payment-methods", "/api/payment-methods", bidder, 201, schemas.SavedOrSetUp,
               json={"card_number": SUCCEEDING_CARD})
    await call("GET", "/api/payment-methods", "/api/payment-methods", bidder, 200, schemas.PaymentMethods)
    await call("POST", "/api/auctions/{id}/bids", bids, bidder, 200, auction_schemas.BidView,
               json={"amount_cents": 5_000, "max_cents": 9_000, "idempotency_key": "b1"})
    await call("POST", "/api/auctions/{id}/bids", bids, bidder, 409, None,
               json={"amount_cents": 5_000, "idempotency_key": "b2"})  # already leading
    await call("GET", "/api/auctions/{id}", f"/api/auctions/{auction['id']}", {}, 200, auction_schemas.AuctionView)
    bought = await call("POST", "/api/auctions/{id}/buy-now", f"/api/auctions/{auction['id']}/buy-now",
                        {**bidder, "Idempotency-Key": "buy"}, 200, auction_schemas.BidView, json={})
    assert bought["outcome"] == "bought" and bought["auction"]["state"] == "closed"
    await call("GET", "/api/auctions/{id}", f"/api/auctions/{auction['id']}", {}, 200, auction_schemas.AuctionView)


async def test_fulfilment_callbacks_answer_as_documented(node_factory: NodeFactory) -> None:
    """The fulfilment webhook, signed per Standard Webhooks: a good callback for an order that is not ours is
    received and ignored, its repeat is a duplicate; a forged, headerless or malformed one is a 400 that names why
    (a body that is not an event object was a 500); without a secret the node answers 503."""
    secret = "whsec_" + base64.b64encode(b"the fulfilment provider's secret").decode()
    node = await node_factory(fulfilment_webhook_secret=secret)
    spec = await api_document(node.http, node.url)
    url = node.url + "/api/fulfilment/webhook"

    def signed(body: Any, webhook_id: str = "msg_1", key: str = secret) -> tuple[bytes, dict[str, str]]:
        payload = json.dumps(body).encode()  # orjson refuses integers past 64 bits
        now = dt.datetime.now(tz=dt.UTC)
        return payload, {"webhook-id": webhook_id, "webhook-timestamp": str(int(now.timestamp())),
                         "webhook-signature": Webhook(key).sign(webhook_id, now, payload.decode()),
                         "Content-Type": "application/json"}

    event = {"type": "order.updated", "data": {"order": {"external_id": "someone-elses-7", "status": "shipped",
                                                          "seq": 1}}}
    outcomes = []
    for _ in range(2):
        payload, headers = signed(event)
        async with node.http.post(url, data=payload, headers=headers) as r:
            await assert_documented(spec, "POST", "/api/fulfilment/webhook", r)
            assert r.status == 200, await r.text()
            outcomes.append((await r.json())["outcome"])
    assert outcomes == ["ignored", "duplicate"]
    forged = signed(event, "msg_2", "whsec_" + base64.b64encode(b"someone else's secret").decode())
    malformed = [signed(body, f"msg_{n}") for n, body in enumerate(
        ([1], {"type": "x", "data": [1]}, {**event, "data": {"order": {**event["data"]["order"], "seq": 2**64}}},
         {**event, "type": "a\x00b"}), start=3)]
    cases = [(*forged, "bad-signature"), (orjson.dumps(event), {"Content-Type": "application/json"}, "bad-signature"),
             *((payload, headers, "malformed-event") for payload, headers in malformed)]
    for payload, headers, slug in cases:
        async with node.http.post(url, data=payload, headers=headers) as r:
            problem = await assert_documented(spec, "POST", "/api/fulfilment/webhook", r)
            assert r.status == 400 and problem and problem["type"] == f"livecore:{slug}", await r.text()
    unconfigured = await node_factory()
    payload, headers = signed(event, "msg_9")
    async with unconfigured.http.post(unconfigured.url + "/api/fulfilment/webhook", data=payload,
                                      headers=headers) as r:
        problem = await assert_documented(spec, "POST", "/api/fulfilment/webhook", r)
        assert r.status == 503 and problem and problem["type"] == "livecore:webhooks-not-configured"
