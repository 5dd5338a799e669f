"""Frozen wallets: a refund or dispute that took back more coins than a wallet held freezes it (purchases.py); an
admin lifts the freeze, and the freeze rows keep the shortfall with who resolved it and when."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from commerce import ledger
from livecore.accounts import Account
from livecore.http import Problem

if TYPE_CHECKING:
    from commerce.service import Commerce

ADMIN_ROLE = "admin"


async def unfreeze(commerce: Commerce, admin: Account, owner_id: int) -> dict[str, Any]:
    """Lift the freeze on a viewer's coin wallet; unfreezing a wallet that is not frozen changes nothing."""
    if ADMIN_ROLE not in admin.roles:
        raise Problem(403, "not-admin", "only an admin may unfreeze a wallet")
    node = commerce.node
    if await node.accounts.get(owner_id) is None:
        raise Problem(404, "user-not-found", f"there is no user {owner_id}")
    wallet = await commerce.accounts.user(owner_id, ledger.COINS)
    async with node.pool.acquire() as conn, conn.transaction():
        was_frozen = await conn.fetchval(
            "UPDATE ledger_accounts SET frozen = false WHERE id = $1 AND frozen RETURNING true", wallet)
        forgiven = await conn.fetchval(
            "WITH r AS (UPDATE wallet_freezes SET resolved_ms = $2, resolved_by = $3"
            " WHERE owner_id = $1 AND resolved_ms IS NULL RETURNING shortfall_coins)"
            " SELECT sum(shortfall_coins)::bigint FROM r",
            owner_id, node.clock.now_ms(), admin.id,
        )
    return {"user_id": owner_id, "was_frozen": bool(was_frozen), "shortfall_coins_resolved": forgiven or 0}
