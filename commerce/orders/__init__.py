"""Orders of merch: checkout at a fixed price (addresses checked per country, a shipping quote, a payment the
provider's webhook confirms), won auctions charged off-session with second-chance offers, every order's money in
the ledger, and its fulfilment by the print-on-demand provider through signed callbacks.

Public: `Orders` (the context of one node) and `add_routes`; the payment webhook routes an order's events to
`payments.order_for` / `payments.apply_event`.
"""

from commerce.orders.routes import add_routes
from commerce.orders.service import Orders

__all__ = ["Orders", "add_routes"]
