"""Live auctions over HTTP and the room WebSocket: opening, bidding, proxy maximums, idempotent retries, the
events and the join snapshot, anti-sniping and the close by the server's clock, buy-it-now, and bad input that
gets a problem and changes nothing."""

from __future__ import annotations

from lots import START_CENTS, VARIANT, AuctionFold, bid, bidder, database_view, open_auction, room_with_product
from money import api, commerce_of, key
from roomclient import events_until, send

from commerce.auctions import auctions as auction_domain
from commerce.providers import DECLINED_CARD, SUCCEEDING_CARD
from livecore.clock import ManualClock
from livecore.streams import streams

NO_SWEEP = {"auction_sweep_ms": 3_600_000}  # these tests close auctions themselves, by the clock they drive


def _auction_events(events: list[dict], action: str | None = None) -> list[dict]:
    return [e for e in events if e["type"] == "auction" and (action is None or e["action"] == action)]


async def _snapshot(node, stream_id: int, token: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    socket = await node.ws(stream_id, token)
    return (await events_until(socket, lambda evs: any(e["type"] == "snapshot" for e in evs)))[0]


async def _history(node, auction_id: int) -> list[tuple]:  # type: ignore[no-untyped-def]
    rows = await node.node.pool.fetch("SELECT seq, bidder_id, kind, amount_cents, outcome FROM auction_bids"
                                      " WHERE auction_id = $1 ORDER BY seq", auction_id)
    return [tuple(r) for r in rows]


async def test_saving_a_test_card(node) -> None:  # type: ignore[no-untyped-def]
    viewer = await node.signup()
    status, listed = await api(node, "GET", "/api/payment-methods", viewer["token"])
    assert status == 200 and listed["methods"] == []
    status, saved = await api(node, "POST", "/api/payment-methods", viewer["token"], {"card_number": SUCCEEDING_CARD})
    assert status == 201 and (saved["brand"], saved["last4"], saved["state"]) == ("visa", "4242", "ready")
    status, again = await api(node, "POST", "/api/payment-methods", viewer["token"], {"card_number": SUCCEEDING_CARD})
    assert status == 201 and again["id"] == saved["id"]
    status, declined = await api(node, "POST", "/api/payment-methods", viewer["token"], {"card_number": DECLINED_CARD})
    assert status == 402 and declined["type"] == "livecore:card-declined"
    status, other = await api(node, "POST", "/api/payment-methods", viewer["token"], {"card_number": "1234"})
    assert status == 400 and other["type"] == "livecore:card-not-accepted"
    status, listed = await api(node, "GET", "/api/payment-methods", viewer["token"])
    assert [m["id"] for m in listed["methods"]] == [saved["id"]]


async def test_bids_proxy_maximums_events_and_the_snapshot(node) -> None:  # type: ignore[no-untyped-def]
    room = await room_with_product(node)
    ann, bob = await bidder(node), await bidder(node)
    watcher = await node.ws(room.stream["id"])
    first = await events_until(watcher, lambda evs: any(e["type"] == "snapshot" for e in evs))
    assert first[0]["auction"] is None
    auction = await open_auction(node, room)
    assert (auction["state"], auction["price_cents"], auction["leader"], auction["bids"]) == (
        "open", START_CENTS, None, [])
    assert auction["ends_at"] == auction["opened_at"] + 60_000 and auction["variant"]["id"] == VARIANT
    opened = _auction_events(await events_until(watcher, lambda evs: bool(_auction_events(evs))))[0]
    assert opened["action"] == "opened" and opened["ends_at"] == auction["ends_at"] and opened["seq"] > 0
    aid = auction["id"]

    status, placed = await bid(node, ann["token"], aid, 2000, max_cents=2500)
    assert status == 200 and placed["outcome"] == "leading" and placed["leading"]
    assert placed["bid"]["max_cents"] == 2500 and placed["auction"]["price_cents"] == 2000
    status, answered = await bid(node, bob["token"], aid, 2100)
    assert status == 200 and answered["outcome"] == "outbid" and not answered["leading"]
    assert answered["auction"]["price_cents"] == 2200 and answered["auction"]["leader"]["id"] == ann["id"]
    bob_key = key()
    status, lead = await bid(node, bob["token"], aid, 2600, idempotency_key=bob_key)
    assert status == 200 and lead["outcome"] == "leading" and lead["auction"]["price_cents"] == 2600
    status, retried = await bid(node, bob["token"], aid, 2600, idempotency_key=bob_key)
    assert retried["replayed"] and retried["bid"]["seq"] == lead["bid"]["seq"]

    seen = await events_until(watcher, lambda evs: any(e.get("version") == lead["auction"]["version"]
                                                       and e["action"] == "outbid" for e in _auction_events(evs)))
    outbid = next(e for e in _auction_events(seen) if e["action"] == "outbid")
    assert outbid["user_ids"] == [ann["id"]] and outbid["leader"]["id"] == bob["id"]
    assert all("max_cents" not in entry for e in seen for entry in e.get("bids", ()))

    got = (await api(node, "GET", f"/api/auctions/{aid}"))[1]
    assert [(b["bidder"]["id"], b["kind"], b["amount_cents"]) for b in got["bids"]] == [
        (ann["id"], "bid", 2000), (bob["id"], "bid", 2100), (ann["id"], "proxy", 2200), (bob["id"], "bid", 2600)]
    assert got["version"] == 4 and got["bids_count"] == 4 and got["min_next_cents"] == 2700
    fold = AuctionFold(aid)
    fold.take([opened, *seen])
    assert (fold.state, fold.history()) == database_view(got)
    snapshot = await _snapshot(node, room.stream["id"])
    late = AuctionFold(aid)
    late.take_snapshot(snapshot)
    assert (late.state, late.history()) == database_view(got)
    assert snapshot["auction"]["product"]["id"] == room.product["id"]


async def test_bids_over_the_room_websocket(node) -> None:  # type: ignore[no-untyped-def]
    room = await room_with_product(node)
    ann = await bidder(node)
    auction = await open_auction(node, room)
    socket = await node.ws(room.stream["id"], ann["token"])
    await events_until(socket, lambda evs: any(e["type"] == "snapshot" for e in evs))
    bid_key = key()
    await send(socket, {"type": "bid", "auction_id": auction["id"], "amount_cents": 2000, "max_cents": 3000,
                        "idempotency_key": bid_key})
    seen = await events_until(socket, lambda evs: any(e["type"] == "bid" for e in evs)
                              and any(e.get("action") == "bid" for e in _auction_events(evs)))
    mine = next(e for e in seen if e["type"] == "bid")
    assert mine["outcome"] == "leading" and mine["idempotency_key"] == bid_key and mine["bid"]["max_cents"] == 3000
    await send(socket, {"type": "bid", "auction_id": auction["id"], "amount_cents": 1000, "idempotency_key": key()})
    refused = await events_until(socket, lambda evs: any(e["type"] == "error" for e in evs))
    error = next(e for e in refused if e["type"] == "error")
    assert (error["command"], error["code"]) == ("bid", "already-leading")
    await send(socket, {"type": "bid", "auction_id": auction["id"], "amount_cents": 2000})
    refused = await events_until(socket, lambda evs: any(e["type"] == "error" for e in evs))
    assert next(e for e in refused if e["type"] == "error")["code"] == "invalid-field"
    assert len(await _history(node, auction["id"])) == 1


async def test_bad_bids_get_a_problem_and_change_nothing(node_factory) -> None:  # type: ignore[no-untyped-def]
    clock = ManualClock()
    node = await node_factory(clock=clock, **NO_SWEEP)
    room = await room_with_product(node)
    ann, bob = await bidder(node), await bidder(node)
    auction = await open_auction(node, room)
    aid = auction["id"]
    assert (await bid(node, ann["token"], aid, 2500))[0] == 200
    before = (await api(node, "GET", f"/api/auctions/{aid}"))[1]
    no_card = await node.signup()
    minor = await node.signup(birth_date="2012-01-01")
    moderator = await bidder(node)
    status, _ = await api(node, "POST", f"/api/rooms/{room.stream['id']}/moderators", room.seller["token"],
                          {"user_id": moderator["id"]})
    assert status == 204
    clock.advance(3)  # a node learns of a new moderator within account_cache_ms (2 s), like any role
    path = f"/api/auctions/{aid}/bids"
    cases = [
        (bob, {"amount_cents": 2550, "idempotency_key": key()}, 409, "bid-too-low"),
        (room.seller, {"amount_cents": 5000, "idempotency_key": key()}, 403, "seller-cannot-bid"),
        (no_card, {"amount_cents": 5000, "idempotency_key": key()}, 402, "payment-method-required"),
        (minor, {"amount_cents": 5000, "idempotency_key": key()}, 403, "rule-adults-only"),
        (moderator, {"amount_cents": 5000, "idempotency_key": key()}, 403, "moderator-cannot-bid"),
        (bob, {"amount_cents": 5000, "max_cents": 4000, "idempotency_key": key()}, 400, "max-below-amount"),
        (bob, {"amount_cents": 5000}, 400, "idempotency-key-required"),
        (bob, {"amount_cents": 10**12, "idempotency_key": key()}, 400, "invalid-field"),
        (bob, {"amount_cents": "lots", "idempotency_key": key()}, 400, "invalid-field"),
    ]
    for who, body, status_expected, slug in cases:
        status, problem = await api(node, "POST", path, who["token"], body)
        assert (status, problem["type"]) == (status_expected, f"livecore:{slug}"), (slug, problem)
    status, problem = await bid(node, bob["token"], aid, 2550)
    assert problem["min_next_cents"] == 2600 and problem["auction"]["price_cents"] == 2500
    status, problem = await bid(node, bob["token"], 987654321, 5000)
    assert status == 404 and problem["type"] == "livecore:auction-not-found"

    other = await room_with_product(node)
    other_auction = await open_auction(node, other)
    socket = await node.ws(room.stream["id"], bob["token"])
    await events_until(socket, lambda evs: any(e["type"] == "snapshot" for e in evs))
    await send(socket, {"type": "bid", "auction_id": other_auction["id"], "amount_cents": 5000,
                        "idempotency_key": key()})
    refused = await events_until(socket, lambda evs: any(e["type"] == "error" for e in evs))
    assert next(e for e in refused if e["type"] == "error")["code"] == "auction-not-found"
    untouched = (await api(node, "GET", f"/api/auctions/{other_auction['id']}"))[1]
    assert (untouched["version"], untouched["bids"]) == (1, []), "another room's auction is not bid on from here"
    status, problem = await api(node, "POST", f"/api/streams/{other.stream['id']}/auctions", room.seller["token"],
                                {"product_id": room.product["id"], "variant_id": VARIANT, "start_cents": 2000,
                                 "duration_s": 60})
    assert status == 403 and problem["type"] == "livecore:not-your-stream"
    status, problem = await api(node, "POST", f"/api/streams/{room.stream['id']}/auctions", room.seller["token"],
                                {"product_id": other.product["id"], "variant_id": VARIANT, "start_cents": 2000,
                                 "duration_s": 60})
    assert status == 403 and problem["type"] == "livecore:not-your-product"
    status, problem = await api(node, "POST", f"/api/streams/{room.stream['id']}/auctions", room.seller["token"],
                                {"product_id": room.product["id"], "variant_id": VARIANT, "start_cents": 2000,
                                 "duration_s": 60})
    assert status == 409 and problem["type"] == "livecore:auction-already-open" and problem["auction_id"] == aid

    clock.advance(61)
    assert {aid, other_auction["id"]} <= set(await auction_domain.close_due(commerce_of(node).auctions))
    status, problem = await bid(node, bob["token"], aid, 9000)
    assert status == 409 and problem["type"] == "livecore:auction-closed"
    status, problem = await api(node, "POST", f"/api/auctions/{aid}/buy-now", bob["token"], {"idempotency_key": key()})
    assert status == 409 and problem["type"] == "livecore:auction-closed"
    after = (await api(node, "GET", f"/api/auctions/{aid}"))[1]
    assert after["bids"] == before["bids"] and after["version"] == before["version"] + 1  # only the close
    stored = await node.node.pool.fetch("SELECT auction_id, seq, bidder_id, amount_cents FROM auction_bids"
                                        " WHERE auction_id = ANY($1::bigint[]) ORDER BY auction_id, seq",
                                        [aid, other_auction["id"]])
    assert [tuple(r) for r in stored] == [(aid, 1, ann["id"], 2500)], "no refused bid left a row"
    assert (after["state"], after["winner"]["id"], after["price_cents"]) == ("closed", ann["id"], 2500)


async def test_opening_terms_are_checked(node) -> None:  # type: ignore[no-untyped-def]
    room = await room_with_product(node)
    path = f"/api/streams/{room.stream['id']}/auctions"
    base = {"product_id": room.product["id"], "variant_id": VARIANT, "start_cents": 2000, "duration_s": 60}
    cases = [
        ({"start_cents": 1000}, 422, "price-below-floor"),
        ({"duration_s": 5}, 400, "invalid-field"),
        ({"buy_now_cents": 1500}, 400, "invalid-field"),
        ({"increments": "nope"}, 400, "invalid-field"),
        ({"increments": [[10, 5]]}, 400, "invalid-field"),
        ({"snipe_window_ms": 3_600_000}, 400, "invalid-field"),
        ({"variant_id": "mug-11oz-white"}, 404, "variant-not-found"),
    ]
    for change, status_expected, slug in cases:
        status, problem = await api(node, "POST", path, room.seller["token"], {**base, **change})
        assert (status, problem["type"]) == (status_expected, f"livecore:{slug}"), (change, problem)
    status, problem = await api(node, "POST", path, room.seller["token"], {**base, "start_cents": 1000})
    assert problem["floor_cents"] == 1473 and problem["variant_id"] == VARIANT
    assert await node.node.pool.fetchval("SELECT count(*) FROM auctions WHERE stream_id = $1",
                                         room.stream["id"]) == 0
    same_key = key()
    status, first = await api(node, "POST", path, room.seller["token"], {**base, "idempotency_key": same_key})
    status_again, again = await api(node, "POST", path, room.seller["token"], {**base, "idempotency_key": same_key})
    assert (status, status_again, again["id"]) == (201, 200, first["id"])
    assert first["increments"]["name"] == "whatnot"


async def test_a_late_bid_extends_the_end_and_the_clock_closes_it(node_factory) -> None:  # type: ignore[no-untyped-def]
    clock = ManualClock()
    node = await node_factory(clock=clock, **NO_SWEEP)
    room = await room_with_product(node)
    ann, bob = await bidder(node), await bidder(node)
    watcher = await node.ws(room.stream["id"])
    await events_until(watcher, lambda evs: any(e["type"] == "snapshot" for e in evs))
    auction = await open_auction(node, room, snipe_window_ms=10_000, extension_ms=15_000)
    aid, ends_at = auction["id"], auction["ends_at"]
    await bid(node, ann["token"], aid, 2000)
    clock.advance(55)
    status, late = await bid(node, bob["token"], aid, 2100)
    assert status == 200 and late["auction"]["ends_at"] == clock.now_ms() + 15_000
    extended = await events_until(watcher, lambda evs: bool(_auction_events(evs, "extended")))
    event = _auction_events(extended, "extended")[0]
    assert (event["previous_ends_at"], event["ends_at"]) == (ends_at, clock.now_ms() + 15_000)
    commerce = commerce_of(node)
    clock.advance(14.9)
    assert aid not in await auction_domain.close_due(commerce.auctions)
    clock.advance(0.1)
    assert aid in await auction_domain.close_due(commerce.auctions)
    assert aid not in await auction_domain.close_due(commerce.auctions)  # exactly once
    closing = await events_until(watcher, lambda evs: bool(_auction_events(evs, "won")))
    actions = [e["action"] for e in _auction_events(closing)]
    assert actions[-2:] == ["closed", "won"]
    won = _auction_events(closing, "won")[0]
    assert won["winner"]["id"] == bob["id"] and won["amount_cents"] == 2100 and won["state"] == "closed"
    win = await node.node.pool.fetchrow("SELECT * FROM auction_wins WHERE auction_id = $1", aid)
    assert (win["winner_id"], win["amount_cents"], win["state"], win["how"]) == (
        bob["id"], 2100, "awaiting_payment", "time")

    sudden = await open_auction(node, room, sudden_death=True)
    clock.advance(59)
    status, placed = await bid(node, ann["token"], sudden["id"], 2000)
    assert placed["auction"]["ends_at"] == sudden["ends_at"]
    clock.advance(1)
    assert (await bid(node, bob["token"], sudden["id"], 2500))[1]["type"] == "livecore:auction-closed"

    await auction_domain.close_due(commerce.auctions)
    unsold = await open_auction(node, room)
    clock.advance(60)
    await auction_domain.close_due(commerce.auctions)
    seen = await events_until(watcher, lambda evs: any(e.get("auction_id") == unsold["id"]
                                                       for e in _auction_events(evs, "unsold")))
    assert _auction_events(seen, "unsold")[-1]["winner"] is None
    assert not await node.node.pool.fetchval("SELECT 1 FROM auction_wins WHERE auction_id = $1", unsold["id"])
    snapshot = await _snapshot(node, room.stream["id"])
    assert snapshot["auction"]["id"] == unsold["id"] and snapshot["auction"]["state"] == "closed"


async def test_buy_it_now_ends_the_auction_at_once(node_factory) -> None:  # type: ignore[no-untyped-def]
    clock = ManualClock()
    node = await node_factory(clock=clock, **NO_SWEEP)
    room = await room_with_product(node)
    ann, bob = await bidder(node), await bidder(node)
    watcher = await node.ws(room.stream["id"])
    await events_until(watcher, lambda evs: any(e["type"] == "snapshot" for e in evs))
    auction = await open_auction(node, room, buy_now_cents=4000)
    assert auction["buy_now_available"]
    await bid(node, ann["token"], auction["id"], 2000)
    clock.advance(5)
    buy_key = key()
    path = f"/api/auctions/{auction['id']}/buy-now"
    status, bought = await api(node, "POST", path, bob["token"], {"idempotency_key": buy_key})
    assert status == 200 and bought["outcome"] == "bought"
    assert (bought["auction"]["state"], bought["auction"]["ends_at"]) == ("closed", clock.now_ms())
    status, again = await api(node, "POST", path, bob["token"], {"idempotency_key": buy_key})
    assert status == 200 and again["replayed"]
    seen = await events_until(watcher, lambda evs: bool(_auction_events(evs, "won")))
    assert [e["action"] for e in _auction_events(seen)][-4:] == ["bid", "outbid", "closed", "won"]
    win = await node.node.pool.fetchrow("SELECT * FROM auction_wins WHERE auction_id = $1", auction["id"])
    assert (win["winner_id"], win["amount_cents"], win["how"]) == (bob["id"], 4000, "buy_now")
    status, problem = await bid(node, ann["token"], auction["id"], 5000)
    assert status == 409 and problem["type"] == "livecore:auction-closed"
    assert auction["id"] not in await auction_domain.close_due(commerce_of(node).auctions)


async def test_ending_the_stream_closes_its_auction_now(node_factory) -> None:  # type: ignore[no-untyped-def]
    """The rule: an auction still open when its stream ends closes then; the leader wins at the current price and
    the win goes to payment like one by time; with no bids the lot is unsold; the room hears closed and won (or
    unsold), and nothing is accepted or opened after."""
    clock = ManualClock()
    node = await node_factory(clock=clock, **NO_SWEEP)
    room = await room_with_product(node)
    ann, bob = await bidder(node), await bidder(node)
    watcher = await node.ws(room.stream["id"])
    await events_until(watcher, lambda evs: any(e["type"] == "snapshot" for e in evs))
    auction = await open_auction(node, room)
    aid = auction["id"]
    await bid(node, ann["token"], aid, 2000)
    await bid(node, bob["token"], aid, 2100, max_cents=3000)
    clock.advance(10)  # far from the auction's end

    status, _ = await api(node, "POST", f"/api/streams/{room.stream['id']}/end", room.seller["token"])
    assert status in (200, 204)
    seen = await events_until(watcher, lambda evs: bool(_auction_events(evs, "won")))
    assert {"type": "stream", "state": "ended"}.items() <= next(e for e in seen if e["type"] == "stream").items()
    assert [e["action"] for e in _auction_events(seen)][-2:] == ["closed", "won"]
    won = _auction_events(seen, "won")[0]
    assert (won["winner"]["id"], won["amount_cents"], won["closed_by"]) == (bob["id"], 2100, "stream_end")
    assert won["ends_at"] == clock.now_ms(), "it closed when the stream ended, not at its end"
    win = await node.node.pool.fetchrow("SELECT * FROM auction_wins WHERE auction_id = $1", aid)
    assert (win["winner_id"], win["amount_cents"], win["how"], win["state"]) == (
        bob["id"], 2100, "stream_end", "awaiting_payment")
    status, problem = await bid(node, ann["token"], aid, 5000)
    assert status == 409 and problem["type"] == "livecore:auction-closed"
    status, problem = await api(node, "POST", f"/api/streams/{room.stream['id']}/auctions", room.seller["token"], {
        "product_id": room.product["id"], "variant_id": VARIANT, "start_cents": START_CENTS, "duration_s": 60})
    assert status == 409 and problem["type"] == "livecore:stream-not-live"
    assert aid not in await auction_domain.close_due(commerce_of(node).auctions)  # closed once

    quiet = await room_with_product(node)
    unsold = await open_auction(node, quiet)
    status, _ = await api(node, "POST", f"/api/streams/{quiet.stream['id']}/end", quiet.seller["token"])
    closed = await node.node.pool.fetchrow("SELECT state, closed_by, winner_id FROM auctions WHERE id = $1",
                                           unsold["id"])
    assert tuple(closed) == ("closed", "stream_end", None)
    assert not await node.node.pool.fetchval("SELECT 1 FROM auction_wins WHERE auction_id = $1", unsold["id"])


async def test_the_sweep_closes_an_auction_whose_stream_ended_without_closing_it(node_factory) -> None:  # type: ignore[no-untyped-def]
    """A node that died between ending the stream and closing its auction leaves it open: any node's sweep closes
    it as if the stream had ended then."""
    clock = ManualClock()
    node = await node_factory(clock=clock, **NO_SWEEP)
    room = await room_with_product(node)
    ann = await bidder(node)
    auction = await open_auction(node, room)
    await bid(node, ann["token"], auction["id"], 2000)
    assert await streams.mark_ended(node.node.pool, room.stream["id"])  # the record only, as a dying node left it
    assert await auction_domain.close_due(commerce_of(node).auctions) == [auction["id"]]
    status, view = await api(node, "GET", f"/api/auctions/{auction['id']}")
    assert status == 200 and (view["state"], view["closed_by"], view["winner"]["id"]) == (
        "closed", "stream_end", ann["id"])
