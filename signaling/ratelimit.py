"""Token buckets for per-user limits on this node, driven by the node's clock."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable


class TokenBuckets:
    """`capacity` tokens per key, refilled at `per_s`; at most `keys_max` keys, least recently used evicted."""

    def __init__(self, capacity: float, per_s: float, keys_max: int = 100_000) -> None:
        self.capacity = capacity
        self.per_s = per_s
        self.keys_max = keys_max
        self._buckets: OrderedDict[Hashable, tuple[float, int]] = OrderedDict()

    def take(self, key: Hashable, now_ms: int, amount: float = 1) -> bool:
        """Spend `amount` tokens for `key` if it has them."""
        tokens, last_ms = self._buckets.pop(key, (self.capacity, now_ms))
        tokens = min(self.capacity, tokens + max(0, now_ms - last_ms) * self.per_s / 1000)
        allowed = tokens >= amount
        if allowed:
            tokens -= amount
        self._buckets[key] = (tokens, now_ms)
        if len(self._buckets) > self.keys_max:
            self._buckets.popitem(last=False)
        return allowed
