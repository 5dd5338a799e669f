"""ads: campaigns (budgets, schedules, pacing, bids, targeting, creatives), ad decisions for the For You feed,
measured events and reports, spend on the ledger; the creator marketplace in ads/marketplace.

Public: `Ads` (the context of one node), `ADS` (its app key), `add_routes`.
"""

from ads.routes import ADS, add_routes
from ads.service import Ads

__all__ = ["ADS", "Ads", "add_routes"]
