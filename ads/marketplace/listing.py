"""A creator's place in the marketplace: opting in (adults above the thresholds), opting out, and their card,
computed again on demand when it is older than `marketplace_card_refresh_s`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ads.marketplace.cards import CARD_COLUMNS, card_view, compute_card, store_card
from livecore.accounts import Account, is_adult
from livecore.http import Problem

if TYPE_CHECKING:
    from ads.marketplace.service import Marketplace


async def opt_in(market: Marketplace, creator: Account) -> dict[str, Any]:
    """List the creator, their card computed now; 403 for a minor or a non-creator, 409 below the thresholds."""
    node = market.node
    if "creator" not in creator.roles:
        raise Problem(403, "not-a-creator", "only creator accounts can be listed in the marketplace")
    if not is_adult(creator, node.today()):
        raise Problem(403, "rule-adults-only", "you must be 18 or older to be listed in the marketplace",
                      rule="adults_only")
    now_ms = node.clock.now_ms()
    card = await compute_card(node.pool, creator.id, market.rules, now_ms)
    if not card.eligible:
        s = node.settings
        raise Problem(409, "below-thresholds", f"a listed creator needs at least {s.marketplace_followers_min} "
                      f"followers and {s.marketplace_recent_videos_min} ready videos from the last "
                      f"{s.marketplace_recent_days} days; you have {card.followers} and {card.recent_videos}",
                      rule="marketplace_followers_min", followers=card.followers, recent_videos=card.recent_videos)
    await node.pool.execute(
        "INSERT INTO marketplace_creators (creator_id) VALUES ($1)"
        " ON CONFLICT (creator_id) DO UPDATE SET listed = true, opted_in_at = now()", creator.id)
    await store_card(node.pool, card, now_ms)
    market.metrics.cards.inc()
    return await card_of(market, creator.id, creator.id)


async def opt_out(market: Marketplace, creator: Account) -> dict[str, Any] | None:
    """Take the creator out of search (offers already made stay as they are); their card, None if never listed."""
    await market.node.pool.execute("UPDATE marketplace_creators SET listed = false WHERE creator_id = $1",
                                   creator.id)
    row = await _stored(market, creator.id)
    return card_view(row) if row is not None else None


async def own(market: Marketplace, creator: Account) -> dict[str, Any]:
    """Whether the creator is listed now, and their card (None if never listed): what the offers page shows."""
    row = await _stored(market, creator.id)
    if row is None:
        return {"listed": False, "card": None}
    return {"listed": bool(row["listed"]), "card": await card_of(market, creator.id, creator.id)}


async def card_of(market: Marketplace, creator_id: int, viewer_id: int) -> dict[str, Any]:
    """A listed creator's card (the creator also sees their own when unlisted), fresh within the refresh time."""
    node = market.node
    row = await _stored(market, creator_id)
    if row is None or (not (row["listed"] and row["eligible"]) and creator_id != viewer_id):
        raise Problem(404, "creator-not-listed", f"creator {creator_id} is not listed in the marketplace")
    now_ms = node.clock.now_ms()
    if row["listed"] and now_ms - row["computed_ms"] >= node.settings.marketplace_card_refresh_s * 1000:
        await store_card(node.pool, await compute_card(node.pool, creator_id, market.rules, now_ms), now_ms)
        market.metrics.cards.inc()
        row = await _stored(market, creator_id)
        assert row is not None, "a stored card cannot vanish"
    return card_view(row)


async def refresh_stale(market: Marketplace) -> int:
    """Compute again up to `marketplace_card_refresh_batch_max` cards older than the refresh time; how many."""
    node, s = market.node, market.node.settings
    now_ms = node.clock.now_ms()
    rows = await node.pool.fetch(
        "SELECT creator_id FROM marketplace_creators WHERE listed AND computed_ms <= $1 ORDER BY computed_ms"
        " LIMIT $2", now_ms - s.marketplace_card_refresh_s * 1000, s.marketplace_card_refresh_batch_max)
    for row in rows:
        await store_card(node.pool, await compute_card(node.pool, row["creator_id"], market.rules, now_ms), now_ms)
    market.metrics.cards.inc(len(rows))
    return len(rows)


async def _stored(market: Marketplace, creator_id: int) -> Any:
    return await market.node.pool.fetchrow(
        f"SELECT {CARD_COLUMNS} FROM marketplace_creators m JOIN accounts a ON a.id = m.creator_id"
        " WHERE m.creator_id = $1", creator_id)
