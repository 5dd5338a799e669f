"""Money: the double-entry ledger, coins and payments, gifts, creator earnings and cash-out, saved payment methods,
merch (commerce/merch) and live auctions (commerce/auctions).

Public: `Commerce` (the context of one node, also the node's `GiftSender` and `RoomShop`), `COMMERCE` (its app
key), `add_routes`, `escrow` (money held for a deal until it is done or called off), and `invariants.violations`
for tests and benchmarks.
"""

from commerce import escrow
from commerce.routes import COMMERCE, add_routes
from commerce.service import Commerce

__all__ = ["COMMERCE", "Commerce", "add_routes", "escrow"]
