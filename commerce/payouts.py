"""Creator earnings and cash-out: held diamonds become withdrawable after the hold window; a payout turns
withdrawable diamonds into cents sent by the payout provider, and is reversed into the wallet if it fails.

A payout needs a destination the provider can send to (with Stripe, the creator's connected account, set up through
`set_up_destination`); without one it is refused before any money moves. The provider's answer settles it: sent
(paid), refused (failed: reversed into withdrawable earnings), or lost (stays pending and is sent again, with the
same idempotency key, when the request is retried). A transfer the provider reverses later comes back the same way.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import asyncpg

from commerce import ledger, rules, webhooks
from commerce.ledger import Leg
from commerce.providers import (
    PROVIDER_IDEMPOTENCY_WINDOW_S,
    DestinationRefused,
    DestinationUnavailable,
    PayoutFailed,
    PayoutUncertain,
)
from livecore.accounts import Account
from livecore.http import BIGINT_MAX, Problem

if TYPE_CHECKING:
    from commerce.service import Commerce

log = logging.getLogger("livecore.commerce.payouts")


async def release_earnings(commerce: Commerce, conn: asyncpg.Connection, creator_id: int) -> int:
    """Move held diamonds whose hold window has passed to withdrawable (inside the caller's transaction)."""
    shards = await commerce.accounts.user_shards(creator_id, ledger.EARNINGS_HELD)
    await conn.execute("SELECT 1 FROM ledger_accounts WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE", shards)
    cutoff_ms = commerce.node.clock.now_ms() - commerce.node.settings.earnings_hold_s * 1000
    # Per shard, everything credited before the cutoff minus everything already released: both only grow.
    rows = await conn.fetch(
        "SELECT e.account_id,"
        " coalesce(sum(e.amount) FILTER (WHERE e.amount > 0 AND t.created_ms <= $2), 0)::bigint AS matured,"
        " coalesce(-sum(e.amount) FILTER (WHERE e.amount < 0), 0)::bigint AS released"
        " FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id"
        " WHERE e.account_id = ANY($1::bigint[]) GROUP BY e.account_id ORDER BY e.account_id",
        shards, cutoff_ms,
    )
    legs = [Leg(r["account_id"], ledger.DIAMOND, -(r["matured"] - r["released"]))
            for r in rows if r["matured"] > r["released"]]
    amount = -sum(leg.amount for leg in legs)
    if amount <= 0:
        return 0
    matured = sum(r["matured"] for r in rows)
    legs.append(Leg(await commerce.accounts.user(creator_id, ledger.EARNINGS_WITHDRAWABLE), ledger.DIAMOND, amount))
    await ledger.post(conn, "release", f"release:{creator_id}:{matured}", commerce.node.clock.now_ms(), legs,
                      actor_id=creator_id, details={"diamonds": amount})
    return amount


async def earnings(commerce: Commerce, creator_id: int) -> dict[str, Any]:
    """The creator's earnings after releasing what has matured."""
    await commerce.accounts.user_shards(creator_id, ledger.EARNINGS_HELD)
    await commerce.accounts.user(creator_id, ledger.EARNINGS_WITHDRAWABLE)
    async with commerce.node.pool.acquire() as conn, conn.transaction():
        await release_earnings(commerce, conn, creator_id)
    found = await ledger.balances(commerce.node.pool, creator_id)
    rate = commerce.catalogue.rate
    withdrawable = found.get("earnings_withdrawable", {}).get("balance", 0)
    return {
        "held_diamonds": found.get("earnings_held", {}).get("balance", 0),
        "withdrawable_diamonds": withdrawable,
        "withdrawable_cents": withdrawable // rate.diamonds_per_cent,
        "payout_pending_cents": found.get("payout_pending", {}).get("balance", 0),
        "diamonds_per_cent": rate.diamonds_per_cent,
        "hold_s": commerce.node.settings.earnings_hold_s,
        "payout_cents_min": commerce.node.settings.payout_cents_min,
    }


async def request_payout(commerce: Commerce, creator: Account, amount_cents: int, idempotency_key: str) -> dict:
    """Cash out `amount_cents`; a retry with the same key returns the same payout (and sends a pending one again)."""
    node, settings = commerce.node, commerce.node.settings
    rules.require_adult(creator, node.today(), "cash out")
    if amount_cents < settings.payout_cents_min:
        raise Problem(400, "rule-payout-minimum", f"payouts start at {settings.payout_cents_min} cents",
                      rule="payout_cents_min", limit_value=settings.payout_cents_min)
    existing = await node.pool.fetchrow(
        "SELECT * FROM payouts WHERE creator_id = $1 AND idempotency_key = $2", creator.id, idempotency_key)
    if existing is not None:
        return payout_view(await _send_again_if_pending(commerce, existing))
    await _require_destination(commerce, creator.id)
    diamonds = amount_cents * commerce.catalogue.rate.diamonds_per_cent
    if diamonds > BIGINT_MAX:  # more than any wallet can hold
        raise Problem(402, "insufficient-earnings", f"{amount_cents} cents is more than any earnings can cover")
    now_ms = node.clock.now_ms()
    # Resolve the accounts before the transaction holds a connection.
    await commerce.accounts.user_shards(creator.id, ledger.EARNINGS_HELD)
    for kind in (ledger.EARNINGS_WITHDRAWABLE, ledger.PAYOUT_PENDING):
        await commerce.accounts.user(creator.id, kind)
    async with node.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "INSERT INTO payouts (creator_id, idempotency_key, amount_cents, diamonds, provider, created_ms)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (creator_id, idempotency_key) DO NOTHING RETURNING *",
            creator.id, idempotency_key, amount_cents, diamonds, commerce.payouts.name, now_ms,
        )
        if row is None:  # a concurrent request with the same key got there first and is sending it
            return payout_view(await conn.fetchrow(
                "SELECT * FROM payouts WHERE creator_id = $1 AND idempotency_key = $2", creator.id, idempotency_key))
        await release_earnings(commerce, conn, creator.id)
        legs = await _payout_legs(commerce, conn, row)
        try:
            await ledger.post(conn, "payout", f"payout:{row['id']}", now_ms, legs, actor_id=creator.id,
                              details={"payout_id": row["id"], "amount_cents": amount_cents, "diamonds": diamonds})
        except Problem as exc:
            if exc.slug == "insufficient-funds":
                raise Problem(402, "insufficient-earnings", f"{amount_cents} cents needs {diamonds} withdrawable "
                              "diamonds; earnings become withdrawable after the hold window") from exc
            raise
    return payout_view(await _send(commerce, row))


async def _require_destination(commerce: Commerce, creator_id: int) -> None:
    """Refuse (before any money moves) a payout that has nowhere to go yet."""
    provider, now_ms = commerce.payouts, commerce.node.clock.now_ms()
    found = await provider.destination(creator_id, now_ms, refresh=False)
    if found.state == "none":
        raise Problem(409, "payout-destination-missing", "set up where your payouts go first: "
                      "POST /api/payouts/destination", state=found.state)
    if found.state != "active":  # the creator may have finished onboarding since we last looked
        try:
            found = await provider.destination(creator_id, now_ms)
        except DestinationUnavailable as exc:
            raise Problem(502, "payout-provider-unavailable", str(exc)) from exc
    if found.state != "active":
        raise Problem(409, "payout-destination-not-ready",
                      f"your payout account is {found.state}; finish setting it up with the provider "
                      "(POST /api/payouts/destination gives a new link)",
                      state=found.state, requirements_due=list(found.requirements_due))


async def _send(commerce: Commerce, payout: asyncpg.Record, *, look_up_first: bool = False) -> asyncpg.Record:
    """Ask the provider to send a pending payout and record its answer; an unknown outcome stays pending."""
    try:
        ref = await commerce.payouts.send_payout(payout["creator_id"], payout["amount_cents"],
                                                 f"payout-{payout['id']}", look_up_first=look_up_first)
    except PayoutFailed as exc:
        return await settle_payout(commerce, payout["id"], ok=False, failure=str(exc))
    except PayoutUncertain as exc:
        log.warning("payout %d stays pending until it is retried: %s", payout["id"], exc)
        return payout
    return await settle_payout(commerce, payout["id"], ok=True, provider_ref=ref)


async def send_pending_again(commerce: Commerce) -> int:
    """Send again (same idempotency key) every payout of this provider still pending `payout_retry_s` after it was
    asked for: its answer was lost and no client retried. Any node may do it; a payout settles once. How many."""
    node = commerce.node
    stuck = await node.pool.fetch(
        "SELECT * FROM payouts WHERE state = 'pending' AND provider = $1 AND created_ms <= $2 ORDER BY id LIMIT $3",
        commerce.payouts.name, node.clock.now_ms() - node.settings.payout_retry_s * 1000,
        node.settings.payout_retry_batch_max,
    )
    for payout in stuck:
        await _send_again_if_pending(commerce, payout)
    return len(stuck)


async def _send_again_if_pending(commerce: Commerce, payout: asyncpg.Record) -> asyncpg.Record:
    if payout["state"] != "pending" or payout["provider"] != commerce.payouts.name:
        return payout
    age_s = (commerce.node.clock.now_ms() - payout["created_ms"]) / 1000
    return await _send(commerce, payout, look_up_first=age_s > PROVIDER_IDEMPOTENCY_WINDOW_S)


async def _payout_legs(commerce: Commerce, conn: asyncpg.Connection, payout: asyncpg.Record) -> list[Leg]:
    accounts, spread = commerce.accounts, f"payout:{payout['id']}"
    return [
        Leg(await accounts.user(payout["creator_id"], ledger.EARNINGS_WITHDRAWABLE), ledger.DIAMOND,
            -payout["diamonds"]),
        Leg(await accounts.platform(ledger.DIAMOND_ISSUANCE, spread), ledger.DIAMOND, payout["diamonds"]),
        Leg(await accounts.platform(ledger.PAYOUT_FUNDING, spread), ledger.USD, -payout["amount_cents"]),
        Leg(await accounts.user(payout["creator_id"], ledger.PAYOUT_PENDING), ledger.USD,
            payout["amount_cents"]),
    ]


async def settle_payout(
    commerce: Commerce, payout_id: int, *, ok: bool, provider_ref: str | None = None, failure: str = ""
) -> asyncpg.Record:
    """Record the provider's answer once: paid moves the pending cents out; failed reverses the whole payout."""
    await _resolve_payout_accounts(commerce, payout_id)
    async with commerce.node.pool.acquire() as conn, conn.transaction():
        payout = await conn.fetchrow("SELECT * FROM payouts WHERE id = $1 FOR UPDATE", payout_id)
        if payout is None or payout["state"] != "pending":
            return payout
        return await _settle(commerce, conn, payout, ok=ok, provider_ref=provider_ref, failure=failure)


async def _settle(commerce: Commerce, conn: asyncpg.Connection, payout: asyncpg.Record, *, ok: bool,
                  provider_ref: str | None, failure: str) -> asyncpg.Record:
    payout_id, accounts, spread = payout["id"], commerce.accounts, f"payout:{payout['id']}"
    pending = Leg(await accounts.user(payout["creator_id"], ledger.PAYOUT_PENDING), ledger.USD,
                  -payout["amount_cents"])
    if ok:
        legs = [pending, Leg(await accounts.platform(ledger.PAID_OUT, spread), ledger.USD, payout["amount_cents"])]
    else:
        legs = [-leg for leg in await _payout_legs(commerce, conn, payout)]
    kind = "payout_paid" if ok else "payout_failed"
    await ledger.post(conn, kind, f"{kind}:{payout_id}", commerce.node.clock.now_ms(), legs,
                      actor_id=payout["creator_id"], details={"payout_id": payout_id, "failure": failure})
    commerce.metrics.ledger_transactions.labels(kind=kind).inc()
    return await conn.fetchrow(
        "UPDATE payouts SET state = $2, provider_ref = $3, failure = $4 WHERE id = $1 RETURNING *",
        payout_id, "paid" if ok else "failed", provider_ref, failure or None,
    )


async def _resolve_payout_accounts(commerce: Commerce, payout_id: int) -> None:
    """Look up (and cache) the accounts a payout's postings use, before a transaction holds a connection."""
    creator_id = await commerce.node.pool.fetchval("SELECT creator_id FROM payouts WHERE id = $1", payout_id)
    if creator_id is None:
        return
    spread = f"payout:{payout_id}"
    for kind in (ledger.EARNINGS_WITHDRAWABLE, ledger.PAYOUT_PENDING):
        await commerce.accounts.user(creator_id, kind)
    for kind in (ledger.DIAMOND_ISSUANCE, ledger.PAYOUT_FUNDING, ledger.PAID_OUT):
        await commerce.accounts.platform(kind, spread)


# Payout destinations

async def destination(commerce: Commerce, creator: Account) -> dict[str, Any]:
    """Where the creator's payouts go and whether they can go there now (re-read from the provider)."""
    try:
        found = await commerce.payouts.destination(creator.id, commerce.node.clock.now_ms())
    except DestinationUnavailable as exc:
        raise Problem(502, "payout-provider-unavailable", str(exc)) from exc
    return found.view()


async def set_up_destination(commerce: Commerce, creator: Account) -> dict[str, Any]:
    """Create the creator's payout destination if needed (with Stripe, an Express-style connected account) and
    say where to finish setting it up (a fresh onboarding link while the provider still needs something)."""
    node = commerce.node
    rules.require_adult(creator, node.today(), "cash out")
    public = node.settings.public_url.rstrip("/")
    try:
        found = await commerce.payouts.set_up_destination(
            creator.id, creator.region, f"{public}/earnings.html?payouts=ready",
            f"{public}/earnings.html?payouts=retry", node.clock.now_ms())
    except DestinationRefused as exc:
        raise Problem(409, "payout-destination-refused", str(exc)) from exc
    except DestinationUnavailable as exc:
        raise Problem(502, "payout-provider-unavailable", str(exc)) from exc
    if found.state == "rejected":
        raise Problem(409, "payout-destination-rejected", "the payment provider rejected your payout account "
                      f"({found.disabled_reason}); contact support", state=found.state,
                      account_id=found.account_id)
    return found.view()


# The payout provider's signed events (Stripe: transfer.reversed on the platform, account.updated from Connect)

async def receive_webhook(commerce: Commerce, payload: bytes, signature: str | None) -> dict[str, Any]:
    """Verify a provider webhook about payouts and apply it; a bad or stale signature is a 400 and changes nothing.
    Applying an event twice changes nothing: a reversal posts once per cumulative reversed amount."""
    node = commerce.node
    secrets = await commerce.webhook_secrets()
    event = webhooks.verify(payload, signature, secrets, node.clock.now_ms(), node.settings.webhook_tolerance_s)
    obj = (event.get("data") or {}).get("object")
    outcome = "ignored"
    if isinstance(obj, dict) and isinstance(obj.get("id"), str):
        if event["type"] == "transfer.reversed" and obj.get("object") == "transfer":
            outcome = await _transfer_reversed(commerce, obj, event["id"])
        elif event["type"] == "account.updated" and obj.get("object") == "account":
            try:
                found = await commerce.payouts.refresh_account(obj["id"], node.clock.now_ms())
            except DestinationUnavailable as exc:  # 503: the provider retries the event later
                raise Problem(503, "payout-provider-unavailable", str(exc)) from exc
            outcome = "ignored" if found is None else "updated"
    commerce.metrics.webhooks.labels(outcome=outcome).inc()
    return {"received": True, "event": event["id"], "outcome": outcome}


async def _transfer_reversed(commerce: Commerce, transfer: dict[str, Any], event_id: str) -> str:
    """Money the provider took back from a sent payout returns to the creator's withdrawable earnings."""
    reversed_total = transfer.get("amount_reversed")
    metadata = transfer.get("metadata") if isinstance(transfer.get("metadata"), dict) else {}
    if not isinstance(reversed_total, int) or reversed_total <= 0:
        return "ignored"
    find = ("SELECT * FROM payouts WHERE provider = $1 AND (provider_ref = $2"
            " OR (provider_ref IS NULL AND 'payout-' || id = $3))")
    found = await commerce.node.pool.fetchrow(find, commerce.payouts.name, transfer["id"],
                                              metadata.get("livecore_payout"))
    if found is None:
        log.warning("event %s reverses transfer %s, which pays no payout of ours", event_id, transfer["id"])
        return "ignored"
    await _resolve_payout_accounts(commerce, found["id"])
    async with commerce.node.pool.acquire() as conn, conn.transaction():
        payout = await conn.fetchrow("SELECT * FROM payouts WHERE id = $1 FOR UPDATE", found["id"])
        if payout["state"] == "failed":
            log.warning("event %s reverses transfer %s of payout %d, which had failed", event_id, transfer["id"],
                        payout["id"])
            return "ignored"
        if payout["state"] == "pending":  # its answer was lost; the transfer was made after all
            payout = await _settle(commerce, conn, payout, ok=True, provider_ref=transfer["id"], failure="")
        now_total = min(reversed_total, payout["amount_cents"])
        cents = now_total - payout["reversed_cents"]
        if cents <= 0:
            return "duplicate"
        diamonds = cents * (payout["diamonds"] // payout["amount_cents"])
        accounts, spread, creator_id = commerce.accounts, f"payout:{payout['id']}", payout["creator_id"]
        legs = [
            Leg(await accounts.platform(ledger.PAID_OUT, spread), ledger.USD, -cents),
            Leg(await accounts.platform(ledger.PAYOUT_FUNDING, spread), ledger.USD, cents),
            Leg(await accounts.platform(ledger.DIAMOND_ISSUANCE, spread), ledger.DIAMOND, -diamonds),
            Leg(await accounts.user(creator_id, ledger.EARNINGS_WITHDRAWABLE), ledger.DIAMOND, diamonds),
        ]
        await ledger.post(conn, "payout_reversed", f"payout_reversed:{payout['id']}:{now_total}",
                          commerce.node.clock.now_ms(), legs, actor_id=creator_id,
                          details={"payout_id": payout["id"], "amount_cents": cents, "diamonds": diamonds,
                                   "transfer": transfer["id"], "event_id": event_id})
        await conn.execute("UPDATE payouts SET reversed_cents = $2, state = $3 WHERE id = $1", payout["id"],
                           now_total, "reversed" if now_total == payout["amount_cents"] else "paid")
    commerce.metrics.ledger_transactions.labels(kind="payout_reversed").inc()
    return "reversed"


def payout_view(row: asyncpg.Record) -> dict[str, Any]:
    return {"id": row["id"], "amount_cents": row["amount_cents"], "diamonds": row["diamonds"], "state": row["state"],
            "provider": row["provider"], "provider_ref": row["provider_ref"], "failure": row["failure"],
            "reversed_cents": row["reversed_cents"], "ts": row["created_ms"]}


async def list_payouts(pool: asyncpg.Pool, creator_id: int, limit: int) -> list[dict[str, Any]]:
    rows = await pool.fetch("SELECT * FROM payouts WHERE creator_id = $1 ORDER BY id DESC LIMIT $2", creator_id, limit)
    return [payout_view(r) for r in rows]
