"""Merch: the print-on-demand catalogue, creators' designs, products with mockups, and the product pinned in a room.

Public: `Merch` (the context of one node), `add_routes`, `pinned` (a room's pin, as its latest event), and for the
rest of commerce (auctions, later orders) `offered_variant` / `OfferedVariant`, `get_product` and `below_floor`.
"""

from commerce.merch.pins import pinned
from commerce.merch.products import OfferedVariant, below_floor, get_product, offered_variant
from commerce.merch.routes import add_routes
from commerce.merch.service import Merch

__all__ = ["Merch", "OfferedVariant", "add_routes", "below_floor", "get_product", "offered_variant", "pinned"]
