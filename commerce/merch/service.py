"""The merch context of one node: the base-item catalogue, fees, image threads and the mockup cache."""

from __future__ import annotations

from commerce.merch import catalogue
from commerce.merch.catalogue import BaseItem, Variant
from commerce.merch.designs import DesignLimits
from commerce.merch.images import ImageWorkers
from commerce.merch.mockups import MockupCache
from commerce.merch.products import Fees
from livecore.node import Node


class Merch:
    def __init__(self, node: Node) -> None:
        s = node.settings
        if not 0 <= s.merch_fee_percent < 100:
            raise ValueError("merch_fee_percent must be from 0 to 99")
        self.node = node
        self.pool = node.pool
        self.clock = node.clock
        self.settings = s
        self.fees = Fees(s.merch_fee_percent, s.merch_fee_fixed_cents)
        self.design_limits = DesignLimits(s.design_bytes_max, s.design_pixels_max, s.design_edge_px_min)
        self.workers = ImageWorkers(s.image_workers, s.image_queue_max)
        self.mockups = MockupCache(s.mockups_cached_max)
        self.items: dict[str, BaseItem] = {}

    def variant(self, variant_id: str) -> Variant:
        """A catalogue variant by id (every stored product's variants are in the catalogue)."""
        return next(v for item in self.items.values() for v in item.variants if v.id == variant_id)

    async def start(self) -> None:
        self.items = await catalogue.publish(self.pool)

    def stop(self) -> None:
        self.workers.stop()
