"""The print-on-demand order lifecycle: pending (not paid yet), paid, in production, shipped with tracking,
delivered; off the happy path on hold, failed, cancelled, returned.

The provider numbers its versions of an order (`seq`); a callback older than the version already applied changes
nothing, so callbacks may arrive in any order. A later state implies the earlier ones: `delivered` arriving before
`shipped` still means the order shipped.
"""

from __future__ import annotations

PENDING, PAID, IN_PRODUCTION, SHIPPED, DELIVERED = "pending", "paid", "in_production", "shipped", "delivered"
ON_HOLD, FAILED, CANCELLED, RETURNED = "on_hold", "failed", "cancelled", "returned"
STATES = (PENDING, PAID, IN_PRODUCTION, SHIPPED, DELIVERED, ON_HOLD, FAILED, CANCELLED, RETURNED)

# What the provider may report, and what it means for the order here.
FROM_PROVIDER = {"pending": PAID, "in_production": IN_PRODUCTION, "shipped": SHIPPED, "delivered": DELIVERED,
                 "on_hold": ON_HOLD, "failed": FAILED, "cancelled": CANCELLED, "returned": RETURNED}
HAS_SHIPPED = frozenset({SHIPPED, DELIVERED, RETURNED})  # the creator's margin is released
UNWOUND = frozenset({FAILED, CANCELLED, RETURNED})  # the buyer gets the whole order back
CANCELLABLE_BY_BUYER = frozenset({PENDING, PAID, ON_HOLD})
