"""Direct offers from an advertiser to a listed creator, paid through the ledger's escrow (commerce.escrow).

offered -> accepted (the price is taken from the advertiser's coins into escrow) -> delivered (the creator names
their ready video; the escrow pays the creator's earnings less the platform fee).
offered -> declined (creator) or cancelled (advertiser): no money moved.
accepted -> declined (the creator backs out) or cancelled (the advertiser, once the due date has passed without a
delivery): the escrow goes back to the advertiser.
offered or accepted -> expired (a sweep, `expire_overdue`): not delivered `offer_expire_after_days` after the due
date; an accepted offer's escrow goes back to the advertiser, and a delivery is refused from then on.

Each step locks the offer's row and moves its money in the same database transaction as its state, and each
posting's external id is derived from the offer, so a retried or concurrent step moves money at most once; asking
for the step an offer already took answers the offer as it is (a retry after a lost answer sees what happened).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import asyncpg

from commerce import escrow
from livecore.accounts import Account, is_adult
from livecore.http import Problem

if TYPE_CHECKING:
    from ads.marketplace.service import Marketplace

Action = Literal["accept", "decline", "deliver", "cancel"]
_CREATOR_ACTIONS = frozenset({"accept", "decline", "deliver"})
_DONE = {"accept": "accepted", "decline": "declined", "deliver": "delivered", "cancel": "cancelled"}
_OPEN = ("offered", "accepted")
_COLUMNS = ("o.*, adv.username AS advertiser_username, adv.display_name AS advertiser_display_name,"
            " cr.username AS creator_username, cr.display_name AS creator_display_name")


@dataclass(frozen=True)
class NewOffer:
    creator_id: int
    brief: str
    price_cents: int
    due_date: dt.date
    idempotency_key: str


async def make_offer(market: Marketplace, advertiser: Account, new: NewOffer) -> tuple[dict[str, Any], bool]:
    """An offer to a listed creator (and whether it is new); a retry with the same key returns the first one."""
    node, pool = market.node, market.node.pool
    earlier = await pool.fetchval("SELECT id FROM marketplace_offers WHERE advertiser_id = $1"
                                  " AND idempotency_key = $2", advertiser.id, new.idempotency_key)
    if earlier is not None:
        return await get_offer(pool, earlier, advertiser.id), False
    require_advertiser(advertiser, node.today())
    if new.creator_id == advertiser.id:
        raise Problem(403, "offer-to-self", "you cannot make an offer to yourself", field="creator_id")
    if new.due_date < node.today():
        raise Problem(400, "invalid-field", "due_date: must be today or later", field="due_date")
    listed = await pool.fetchval("SELECT listed AND eligible FROM marketplace_creators WHERE creator_id = $1",
                                 new.creator_id)
    if not listed:
        raise Problem(404, "creator-not-listed", f"creator {new.creator_id} is not listed in the marketplace",
                      field="creator_id")
    offer_id = await pool.fetchval(
        "INSERT INTO marketplace_offers (advertiser_id, creator_id, idempotency_key, brief, price_cents, due_date,"
        " created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT ON CONSTRAINT one_offer_per_key DO NOTHING RETURNING id",
        advertiser.id, new.creator_id, new.idempotency_key, new.brief, new.price_cents, new.due_date,
        node.clock.now_ms())
    if offer_id is None:  # the same key raced in from a concurrent retry: that one made the offer
        offer_id = await pool.fetchval("SELECT id FROM marketplace_offers WHERE advertiser_id = $1"
                                       " AND idempotency_key = $2", advertiser.id, new.idempotency_key)
        return await get_offer(pool, offer_id, advertiser.id), False
    market.metrics.offers.labels(step="offered").inc()
    return await get_offer(pool, offer_id, advertiser.id), True


def require_advertiser(account: Account, today: dt.date) -> None:
    if "advertiser" not in account.roles:
        raise Problem(403, "not-an-advertiser", "only advertiser accounts can do this (an admin grants the role)")
    if not is_adult(account, today):
        raise Problem(403, "rule-adults-only", "you must be 18 or older to make offers", rule="adults_only")


async def take_step(market: Marketplace, account: Account, offer_id: int, action: Action,
                    video_id: int | None = None) -> dict[str, Any]:
    """Accept, decline, deliver (naming `video_id`) or cancel an offer; the offer as it stands after."""
    pool, commerce = market.node.pool, market.commerce
    offer = await get_offer(pool, offer_id, account.id)
    side = "creator" if action in _CREATOR_ACTIONS else "advertiser"
    if offer[side]["id"] != account.id:
        who = f"the {side}"
        raise Problem(403, "not-your-step", f"only {who} of an offer can {action} it", action=action)
    await escrow.resolve_accounts(commerce, offer["advertiser"]["id"], offer["creator"]["id"])
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("SELECT * FROM marketplace_offers WHERE id = $1 FOR UPDATE", offer_id)
        await _STEPS[action](market, conn, row, video_id)
    return await get_offer(pool, offer_id, account.id)


async def _accept(market: Marketplace, conn: asyncpg.Connection, offer: asyncpg.Record, _: int | None) -> None:
    if offer["state"] == "accepted":
        return
    _require_state(offer, "accept", "offered")
    if offer["due_date"] < market.node.today():
        raise Problem(409, "offer-overdue", f"offer {offer['id']} was due on {offer['due_date']}; it can no longer "
                      "be accepted")
    held = escrow.price_in_coins(market.commerce, offer["price_cents"])
    try:  # a refused posting raises, and the whole step rolls back: the offer stays offered
        await escrow.hold(market.commerce, conn, _ref(offer), offer["advertiser_id"], held, _about(offer))
    except Problem as problem:
        if problem.status not in (402, 403):
            raise
        raise Problem(409, "offer-not-funded", f"the advertiser's wallet does not hold the {held.coins} coins this "
                      "offer costs (or is frozen); it can be accepted once they have topped up",
                      coins=held.coins) from problem
    await conn.execute(
        "UPDATE marketplace_offers SET state = 'accepted', accepted_ms = $2, escrow_coins = $3,"
        " escrow_diamonds = $4, rate_version = $5, fee_percent = $6 WHERE id = $1",
        offer["id"], market.node.clock.now_ms(), held.coins, held.diamonds, held.rate_version,
        market.node.settings.marketplace_fee_percent)
    market.metrics.offers.labels(step="accepted").inc()


async def _deliver(market: Marketplace, conn: asyncpg.Connection, offer: asyncpg.Record,
                   video_id: int | None) -> None:
    assert video_id is not None, "deliver names a video"
    if offer["state"] == "delivered":
        if offer["video_id"] != video_id:
            raise Problem(409, "offer-delivered", f"offer {offer['id']} was delivered with video "
                          f"{offer['video_id']}", video_id=offer["video_id"])
        return
    _require_state(offer, "deliver", "accepted")
    if _expired(market, offer):
        raise Problem(409, "offer-expired", f"offer {offer['id']} was due on {offer['due_date']} and expired "
                      f"{market.node.settings.offer_expire_after_days} days after that; its escrow goes back to the "
                      "advertiser", state="expired")
    video = await conn.fetchrow("SELECT author_id, state FROM videos WHERE id = $1", video_id)
    if video is None or video["author_id"] != offer["creator_id"]:
        raise Problem(404, "video-not-found", f"you have no video {video_id}", field="video_id")
    if video["state"] != "ready":
        raise Problem(409, "video-not-ready", f"video {video_id} is {video['state']}; deliver a ready video",
                      field="video_id")
    used = await conn.fetchval("SELECT id FROM marketplace_offers WHERE video_id = $1", video_id)
    if used is not None:
        raise Problem(409, "video-already-delivered", f"video {video_id} was delivered for offer {used}",
                      field="video_id")
    diamonds = await escrow.release(market.commerce, conn, _ref(offer), offer["advertiser_id"], offer["creator_id"],
                                    _held(offer), offer["fee_percent"], _about(offer))
    await conn.execute(
        "UPDATE marketplace_offers SET state = 'delivered', video_id = $2, settled_ms = $3, creator_diamonds = $4"
        " WHERE id = $1", offer["id"], video_id, market.node.clock.now_ms(), diamonds)
    market.metrics.offers.labels(step="delivered").inc()


async def _decline(market: Marketplace, conn: asyncpg.Connection, offer: asyncpg.Record, _: int | None) -> None:
    if offer["state"] == "declined":
        return
    _require_state(offer, "decline", "offered", "accepted")
    await _close(market, conn, offer, "declined", offer["creator_id"])


async def _cancel(market: Marketplace, conn: asyncpg.Connection, offer: asyncpg.Record, _: int | None) -> None:
    if offer["state"] == "cancelled":
        return
    _require_state(offer, "cancel", "offered", "accepted")
    if offer["state"] == "accepted" and offer["due_date"] >= market.node.today():
        raise Problem(409, "offer-not-overdue", f"offer {offer['id']} was accepted and is due on "
                      f"{offer['due_date']}; it can be cancelled after that day if it is not delivered")
    await _close(market, conn, offer, "cancelled", offer["advertiser_id"])


def _expired(market: Marketplace, offer: asyncpg.Record) -> bool:
    """Past its delivery deadline: `offer_expire_after_days` after the due date (whole days, by the node's date)."""
    deadline = offer["due_date"] + dt.timedelta(days=market.node.settings.offer_expire_after_days)
    return market.node.today() > deadline


async def expire_overdue(market: Marketplace, limit: int) -> int:
    """Expire up to `limit` open offers past their delivery deadline, each in its own transaction with its row
    locked (a delivery racing it either went first, and the offer is no longer open, or finds it expired); an
    accepted one's escrow goes back to the advertiser, once. How many expired."""
    pool, settings = market.node.pool, market.node.settings
    last_due = market.node.today() - dt.timedelta(days=settings.offer_expire_after_days + 1)
    rows = await pool.fetch("SELECT id, advertiser_id, creator_id FROM marketplace_offers"
                            " WHERE state IN ('offered', 'accepted') AND due_date <= $1 ORDER BY due_date, id"
                            " LIMIT $2", last_due, limit)
    expired = 0
    for r in rows:
        await escrow.resolve_accounts(market.commerce, r["advertiser_id"], r["creator_id"])
        async with pool.acquire() as conn, conn.transaction():
            offer = await conn.fetchrow("SELECT * FROM marketplace_offers WHERE id = $1 FOR UPDATE", r["id"])
            if offer["state"] in _OPEN and _expired(market, offer):
                await _close(market, conn, offer, "expired", None)
                expired += 1
    return expired


async def _close(market: Marketplace, conn: asyncpg.Connection, offer: asyncpg.Record, state: str,
                 by: int | None) -> None:
    if offer["state"] == "accepted":
        await escrow.give_back(market.commerce, conn, _ref(offer), offer["advertiser_id"], _held(offer),
                               {**_about(offer), "why": state})
    await conn.execute("UPDATE marketplace_offers SET state = $2, cancelled_by = $3, settled_ms = $4 WHERE id = $1",
                       offer["id"], state, by, market.node.clock.now_ms())
    market.metrics.offers.labels(step=state).inc()


_Step = Callable[["Marketplace", asyncpg.Connection, asyncpg.Record, int | None], Awaitable[None]]
_STEPS: dict[str, _Step] = {"accept": _accept, "deliver": _deliver, "decline": _decline, "cancel": _cancel}


def _require_state(offer: asyncpg.Record, action: str, *states: str) -> None:
    if offer["state"] not in states:
        raise Problem(409, "offer-not-open", f"offer {offer['id']} is {offer['state']}; only an offer that is "
                      f"{' or '.join(states)} can be {_DONE[action]}", state=offer["state"])


def _ref(offer: asyncpg.Record) -> str:
    return f"offer:{offer['id']}"


def _held(offer: asyncpg.Record) -> escrow.Held:
    return escrow.Held(offer["escrow_coins"], offer["escrow_diamonds"], offer["rate_version"])


def _about(offer: asyncpg.Record) -> dict[str, object]:
    return {"offer_id": offer["id"], "advertiser_id": offer["advertiser_id"], "creator_id": offer["creator_id"],
            "price_cents": offer["price_cents"]}


async def get_offer(pool: asyncpg.Pool, offer_id: int, viewer_id: int) -> dict[str, Any]:
    """An offer as its advertiser or creator sees it; 404 for anyone else."""
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM marketplace_offers o JOIN accounts adv ON adv.id = o.advertiser_id"
        " JOIN accounts cr ON cr.id = o.creator_id WHERE o.id = $1 AND $2 IN (o.advertiser_id, o.creator_id)",
        offer_id, viewer_id)
    if row is None:
        raise Problem(404, "offer-not-found", f"you have no offer {offer_id}")
    return offer_view(row)


async def list_offers(pool: asyncpg.Pool, account_id: int, role: Literal["creator", "advertiser"],
                      before_id: int | None, limit: int) -> dict[str, Any]:
    """Offers received (role creator) or sent (role advertiser), newest first."""
    column = "creator_id" if role == "creator" else "advertiser_id"
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM marketplace_offers o JOIN accounts adv ON adv.id = o.advertiser_id"
        f" JOIN accounts cr ON cr.id = o.creator_id WHERE o.{column} = $1 AND ($2::bigint IS NULL OR o.id < $2)"
        " ORDER BY o.id DESC LIMIT $3", account_id, before_id, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": [offer_view(r) for r in rows], "next_before": rows[-1]["id"] if more else None}


def offer_view(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "advertiser": {"id": row["advertiser_id"], "username": row["advertiser_username"],
                       "display_name": row["advertiser_display_name"]},
        "creator": {"id": row["creator_id"], "username": row["creator_username"],
                    "display_name": row["creator_display_name"]},
        "brief": row["brief"],
        "price_cents": row["price_cents"],
        "due_date": row["due_date"].isoformat(),
        "state": row["state"],
        "escrow": None if row["escrow_diamonds"] is None else {
            "coins": row["escrow_coins"], "diamonds": row["escrow_diamonds"], "fee_percent": row["fee_percent"]},
        "creator_diamonds": row["creator_diamonds"],
        "video_id": row["video_id"],
        "created_ms": row["created_ms"],
        "accepted_ms": row["accepted_ms"],
        "settled_ms": row["settled_ms"],
    }


async def partnership_labels(pool: asyncpg.Pool, video_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The paid-partnership label of each delivered video among `video_ids` (feeds' card label hook)."""
    rows = await pool.fetch(
        "SELECT o.video_id, o.advertiser_id, a.display_name FROM marketplace_offers o"
        " JOIN accounts a ON a.id = o.advertiser_id WHERE o.video_id = ANY($1::bigint[]) AND o.state = 'delivered'",
        video_ids)
    return {r["video_id"]: [{"kind": "paid-partnership", "text": f"Paid partnership with {r['display_name']}",
                             "sponsor": {"id": r["advertiser_id"], "display_name": r["display_name"]}}]
            for r in rows}
