"""The creator marketplace: creators 18+ above the thresholds list themselves; their cards (followers, median
views, engagement, growth, the audience by age band, region and interests: aggregates only, small groups
suppressed) are precomputed and searched by advertisers, who make direct offers paid through the ledger's escrow;
a delivered video carries a paid-partnership label on its feed cards.

Public: `Marketplace` (the context of one node), `MARKETPLACE` (its app key), `add_routes`.
"""

from ads.marketplace.routes import MARKETPLACE, add_routes
from ads.marketplace.service import Marketplace

__all__ = ["MARKETPLACE", "Marketplace", "add_routes"]
