"""Live auctions: opening one in your room, bidding and buying it now, reading it, and closing it when its time is
up. The rules are in rules.py, the batched atomic bid in bidding.py, the room events in events.py."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

from commerce import event_outbox, merch
from commerce import rules as money_rules
from commerce.auctions import events, increments, rules
from commerce.auctions.bidding import BidRequest, BidResult, Lot, state_of, terms_of
from commerce.room_shop import CHANGING
from livecore.accounts import Account
from livecore.http import Problem
from livecore.streams import get_stream

if TYPE_CHECKING:
    from commerce.auctions.service import Auctions

MODERATOR_ROLES = frozenset({"moderator", "admin"})  # platform moderators moderate every room

_REFUSED = {  # refusal outcome -> (status, detail)
    rules.AUCTION_CLOSED: (409, "the auction is closed"),
    rules.BID_TOO_LOW: (409, "the bid must be at least the minimum next bid"),
    rules.ALREADY_LEADING: (409, "you already lead; to raise your maximum send a higher max_cents"),
    rules.SELLER_CANNOT_BID: (403, "sellers cannot bid on their own auctions"),
    rules.MODERATOR_CANNOT_BID: (403, "the room's moderators cannot bid in it"),
    rules.BUY_NOW_UNAVAILABLE: (409, "buy-it-now is not available for this auction (any more)"),
    rules.MAX_BELOW_AMOUNT: (400, "max_cents must be at least amount_cents"),
}

# Closes the auctions whose end has passed, and those whose stream has ended (its room is gone: the leader wins now,
# as at the end; `end_stream` asks for its room's at once, and this sweep catches one a node died before closing).
_CLOSE_DUE = """
WITH due AS (
    SELECT a.id, CASE WHEN a.ends_at_ms <= $1 THEN 'time' ELSE 'stream_end' END AS how
    FROM auctions a JOIN streams s ON s.id = a.stream_id
    WHERE a.state = 'open' AND (a.ends_at_ms <= $1 OR s.state = 'ended') ORDER BY a.ends_at_ms LIMIT $2
    FOR UPDATE OF a SKIP LOCKED
), closed AS (
    UPDATE auctions a SET state = 'closed', winner_id = a.leader_id, closed_ms = $1, closed_by = due.how,
        ends_at_ms = least(a.ends_at_ms, $1), version = a.version + 1
    FROM due WHERE a.id = due.id AND a.state = 'open'
    RETURNING a.*
), won AS (
    INSERT INTO auction_wins (auction_id, winner_id, product_id, variant_id, amount_cents, won_ms, how)
    SELECT id, winner_id, product_id, variant_id, price_cents, $1, closed_by FROM closed WHERE winner_id IS NOT NULL
)
SELECT c.*, w.display_name AS winner_name FROM closed c LEFT JOIN accounts w ON w.id = c.winner_id
"""


async def open_auction(ctx: Auctions, seller: Account, stream_id: int, spec: dict[str, Any],
                       idempotency_key: str | None) -> tuple[dict[str, Any], bool]:
    """Open an auction of one of your product variants in your live room; (its view, whether it is new)."""
    s, pool = ctx.settings, ctx.pool
    stream = await get_stream(pool, stream_id)
    if stream is None:
        raise Problem(404, "stream-not-found", f"there is no stream {stream_id}")
    if stream.creator_id != seller.id:
        raise Problem(403, "not-your-stream", "only the stream's creator can start auctions in its room")
    if idempotency_key:
        existing = await pool.fetchval("SELECT id FROM auctions WHERE stream_id = $1 AND idempotency_key = $2",
                                       stream_id, idempotency_key)
        if existing is not None:
            return await auction_view(ctx, existing), False
    if stream.state != "live":
        raise Problem(409, "stream-not-live", "auctions run in a live room")
    variant = await merch.offered_variant(pool, spec["product_id"], spec["variant_id"])
    if variant.creator_id != seller.id:
        raise Problem(403, "not-your-product", "you can only auction your own products")
    _check_terms(ctx, spec, variant)
    table = increments.choose(spec.get("increments"), s.auction_increment_steps_max)
    now_ms = ctx.clock.now_ms()
    duration_ms = spec["duration_s"] * 1000
    try:
        auction_id = await pool.fetchval(
            "INSERT INTO auctions (stream_id, seller_id, product_id, variant_id, start_cents, increments_name,"
            " increments, sudden_death, buy_now_cents, snipe_window_ms, extension_ms, opened_ms, duration_ms,"
            " idempotency_key, state, price_cents, leader_max_cents, ends_at_ms, bids_count, version)"
            " SELECT $1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12, $13, $14, 'open', $5, 0, $15, 0, 1"
            # Only into a live room, and holding the stream's row until this commits: a stream ending meanwhile
            # (end_stream closes its room's auction) waits for it, so no auction stays open in an ended room.
            " FROM streams WHERE id = $1 AND state = 'live' FOR SHARE RETURNING id",
            stream_id, seller.id, variant.product_id, variant.variant_id, spec["start_cents"], table.name,
            orjson.dumps(table.public()["steps"]).decode(), spec.get("sudden_death", False),
            spec.get("buy_now_cents"), spec.get("snipe_window_ms", s.auction_snipe_window_ms),
            spec.get("extension_ms", s.auction_extension_ms), now_ms, duration_ms, idempotency_key,
            now_ms + duration_ms,
        )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "one_auction_per_key":  # the same request, committed meanwhile
            return await open_auction(ctx, seller, stream_id, spec, idempotency_key)
        open_id = await pool.fetchval("SELECT id FROM auctions WHERE stream_id = $1 AND state = 'open'", stream_id)
        raise Problem(409, "auction-already-open", f"auction {open_id} is still open in this room; one at a time",
                      auction_id=open_id) from exc
    if auction_id is None:
        raise Problem(409, "stream-not-live", "auctions run in a live room; this stream has ended")
    lot = await ctx.bidding.lot(auction_id)
    lot.names[seller.id] = seller.display_name
    view = await auction_view(ctx, auction_id)
    # After the auction's own commit (its view is read from it), but through the outbox like its later events, so
    # the room sees `opened` before any bid and even if the bus is away right now.
    await event_outbox.write(pool, [(stream_id, events.opened(lot, terms_only(view)))], ctx.clock.now_ms())
    return view, True


def _check_terms(ctx: Auctions, spec: dict[str, Any], variant: merch.OfferedVariant) -> None:
    s = ctx.settings
    floor = ctx.fees.floor_cents(variant.base_cost_cents)
    if spec["start_cents"] < floor:
        raise merch.below_floor(ctx.merch.variant(variant.variant_id), ctx.fees, spec["start_cents"])
    if not s.auction_duration_s_min <= spec["duration_s"] <= s.auction_duration_s_max:
        raise Problem(400, "invalid-field", f"duration_s must be from {s.auction_duration_s_min} to "
                      f"{s.auction_duration_s_max}", field="duration_s", rule="auction_duration_s_max")
    buy_now = spec.get("buy_now_cents")
    if buy_now is not None and buy_now <= spec["start_cents"]:
        raise Problem(400, "invalid-field", "buy_now_cents must be above start_cents", field="buy_now_cents")
    for name, limit in (("snipe_window_ms", s.auction_snipe_window_ms_max),
                        ("extension_ms", s.auction_extension_ms_max)):
        value = spec.get(name)
        if value is not None and not 0 <= value <= limit:
            raise Problem(400, "invalid-field", f"{name} must be from 0 to {limit}", field=name,
                          rule=f"auction_{name}_max", limit_value=limit)


async def place_bid(ctx: Auctions, bidder: Account, auction_id: int, amount_cents: int, max_cents: int | None,
                    idempotency_key: str, room_id: int | None = None) -> dict[str, Any]:
    """Bid on an auction (18+, with a saved way to pay); a retry with the same key returns the first result."""
    return await _offer(ctx, bidder, auction_id, rules.Offer(bidder.id, "bid", amount_cents, max_cents),
                        idempotency_key, room_id)


async def buy_now(ctx: Auctions, buyer: Account, auction_id: int, idempotency_key: str) -> dict[str, Any]:
    """Buy the lot at its buy-it-now price, ending the auction at once."""
    return await _offer(ctx, buyer, auction_id, rules.Offer(buyer.id, "buy_now"), idempotency_key, None)


async def _offer(ctx: Auctions, bidder: Account, auction_id: int, offer: rules.Offer, idempotency_key: str,
                 room_id: int | None) -> dict[str, Any]:
    money_rules.require_adult(bidder, ctx.node.today(), "bid")
    cap = ctx.settings.auction_bid_cents_max
    for name, value in (("amount_cents", offer.amount_cents), ("max_cents", offer.max_cents)):
        if value is not None and offer.kind == "bid" and not 1 <= value <= cap:
            raise Problem(400, "invalid-field", f"{name} must be from 1 to {cap}", field=name,
                          rule="auction_bid_cents_max", limit_value=cap)
    lot = await ctx.bidding.lot(auction_id)
    if room_id is not None and lot.stream_id != room_id:
        raise Problem(404, "auction-not-found", f"auction {auction_id} is not in this room")
    if bidder.id != lot.terms.seller_id and MODERATOR_ROLES & set(bidder.roles):
        raise Problem(403, rules.MODERATOR_CANNOT_BID, "moderators cannot bid")
    if bidder.id != lot.terms.seller_id:
        await ctx.payment_methods.require(bidder.id)
    result = await ctx.bidding.submit(lot, BidRequest(offer, idempotency_key, bidder.display_name))
    ctx.metrics.bids.labels(outcome=result.outcome).inc()
    if result.outcome not in rules.ACCEPTED:
        status, detail = _REFUSED[result.outcome]
        raise Problem(status, result.outcome, detail, **_refusal_facts(lot, result))
    return bid_view(lot, result, idempotency_key)


def _refusal_facts(lot: Lot, result: BidResult) -> dict[str, Any]:
    facts = {"auction": events.changing(lot, result.state)}
    if result.outcome == rules.BID_TOO_LOW:
        facts["min_next_cents"] = rules.min_next_cents(lot.terms, result.state)
        facts["rule"] = "increment"
    return facts


def bid_view(lot: Lot, result: BidResult, idempotency_key: str) -> dict[str, Any]:
    """What the bidder hears back: their entry (with their own maximum) and the auction right after it."""
    assert result.entry is not None
    return {"outcome": result.outcome, "leading": result.outcome in (rules.LEADING, rules.RAISED, rules.BOUGHT),
            "bid": {**events.public_entry(lot, result.entry), "max_cents": result.entry.max_cents},
            "auction": events.changing(lot, result.state), "idempotency_key": idempotency_key,
            "replayed": result.replayed}


async def auction_view(ctx: Auctions, auction_id: int, bids_max: int | None = None) -> dict[str, Any]:
    """An auction as `GET /api/auctions/{id}` shows it: terms, state, the latest bids, the server's clock."""
    row = await ctx.pool.fetchrow(
        "SELECT a.*, s.display_name AS seller_name, l.display_name AS leader_name, w.display_name AS winner_name"
        " FROM auctions a JOIN accounts s ON s.id = a.seller_id LEFT JOIN accounts l ON l.id = a.leader_id"
        " LEFT JOIN accounts w ON w.id = a.winner_id WHERE a.id = $1", auction_id)
    if row is None:
        raise Problem(404, "auction-not-found", f"there is no auction {auction_id}")
    bids = await ctx.pool.fetch(
        "SELECT b.*, a.display_name FROM (SELECT * FROM auction_bids WHERE auction_id = $1 ORDER BY seq DESC"
        " LIMIT $2) b JOIN accounts a ON a.id = b.bidder_id ORDER BY b.seq",
        auction_id, bids_max or ctx.settings.auction_bids_listed_max)
    names = {b["bidder_id"]: b["display_name"] for b in bids}
    names.update({row[f"{who}_id"]: row[f"{who}_name"] for who in ("seller", "leader", "winner")
                  if row[f"{who}_id"] is not None})
    lot = _view_lot(row, names)
    product = await merch.get_product(ctx.pool, row["product_id"])
    variant = next(v for v in product["variants"] if v["id"] == row["variant_id"])
    terms = lot.terms
    return {
        "id": auction_id, "stream_id": row["stream_id"], "seller": lot.person(terms.seller_id),
        "product": {"id": product["id"], "title": product["title"], "base_item": product["base_item"]},
        "variant": variant, "currency": "USD", "start_cents": terms.start_cents,
        "increments": terms.increments.public(), "sudden_death": terms.sudden_death,
        "buy_now_cents": terms.buy_now_cents, "snipe_window_ms": terms.snipe_window_ms,
        "extension_ms": terms.extension_ms, "opened_at": row["opened_ms"], "duration_ms": row["duration_ms"],
        **{k: v for k, v in events.changing(lot, lot.state).items() if k != "auction_id"},
        "bids": [events.public_entry(lot, entry_of(b)) for b in bids],
        "order_id": await ctx.pool.fetchval(
            "SELECT order_id FROM auction_payment_attempts WHERE auction_id = $1 AND order_id IS NOT NULL"
            " ORDER BY n DESC LIMIT 1", auction_id),
        "server_now": ctx.clock.now_ms(),
    }


async def announce_payment_step(ctx: Auctions, auction_id: int, action: str, **extra: Any) -> None:
    """Announce a step of getting a won lot paid (`offered` to the next bidder, `won` by them) in its room, as an
    `auction` event carrying the lot's state like every other."""
    row = await ctx.pool.fetchrow(
        "SELECT a.*, w.display_name AS winner_name, l.display_name AS leader_name FROM auctions a"
        " LEFT JOIN accounts w ON w.id = a.winner_id LEFT JOIN accounts l ON l.id = a.leader_id WHERE a.id = $1",
        auction_id)
    names = {row[f"{who}_id"]: row[f"{who}_name"] for who in ("winner", "leader") if row[f"{who}_id"] is not None}
    lot = _view_lot(row, names)
    await event_outbox.write(ctx.pool, [(row["stream_id"], events.payment_step(action, lot, lot.state, **extra))],
                             ctx.clock.now_ms())


def terms_only(view: dict[str, Any]) -> dict[str, Any]:
    """The parts of an auction's view that never change (what the `opened` event carries)."""
    return {k: v for k, v in view.items() if k not in (*CHANGING, "bids", "server_now", "order_id")}


def _view_lot(row: asyncpg.Record, names: dict[int, str]) -> Lot:
    """A read-only copy of an auction row, to shape views and events the way the bidding copy does."""
    return Lot(row["id"], row["stream_id"], row["product_id"], row["variant_id"], terms_of(row), state_of(row),
               frozenset(), 0, dict(names), OrderedDict())


def entry_of(row: asyncpg.Record) -> rules.Entry:
    return rules.Entry(row["seq"], row["bidder_id"], row["kind"], row["amount_cents"], row["max_cents"],
                       row["outcome"], row["placed_ms"])


async def latest_in_room(ctx: Auctions, stream_id: int) -> dict[str, Any] | None:
    """The room's current auction (open, or the last one closed) with its latest bids, for join snapshots."""
    auction_id = await ctx.pool.fetchval("SELECT id FROM auctions WHERE stream_id = $1 ORDER BY id DESC LIMIT 1",
                                         stream_id)
    if auction_id is None:
        return None
    return await auction_view(ctx, auction_id, ctx.settings.auction_snapshot_bids_max)


async def close_due(ctx: Auctions) -> list[int]:
    """Close every auction whose end has passed by the node's clock or whose stream has ended, once across all
    nodes, and announce each; the ids of those this call closed."""
    now_ms = ctx.clock.now_ms()
    announced: list[events.RoomEvent] = []
    async with ctx.pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(_CLOSE_DUE, now_ms, ctx.settings.auction_sweep_batch_max)
        for row in rows:
            names = {row["winner_id"]: row["winner_name"]} if row["winner_id"] is not None else {}
            state = state_of(row)
            lot = ctx.bidding.lots.get(row["id"]) or _view_lot(row, names)
            lot.names.update(names)
            announced.extend((row["stream_id"], e) for e in events.after_close(lot, state))
        await event_outbox.write(conn, announced, now_ms)  # committed with the close
    for row in rows:
        names = {row["winner_id"]: row["winner_name"]} if row["winner_id"] is not None else {}
        ctx.bidding.take_state(row["id"], state_of(row), names)
        ctx.metrics.closed.labels(outcome="won" if row["winner_id"] else "unsold").inc()
    return [row["id"] for row in rows]
