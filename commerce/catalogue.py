"""Coin packages, the gift catalogue and the gift conversion rate: versioned data shipped in catalogue.json.

Gift versions and rates are copied into PostgreSQL at start (never changed once published), so a transaction
names the version its price came from and an old gift can always be priced again. A gift's icon (an SVG the node
serves under /static/icons/gifts/) is presentation, not price: catalogue.json's `icon_url` wins for every version.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg
import orjson


@dataclass(frozen=True)
class CoinPackage:
    id: str
    coins: int
    amount_cents: int
    currency: str


@dataclass(frozen=True)
class Gift:
    id: str
    name: str
    icon_url: str
    coins: int


@dataclass(frozen=True)
class GiftRate:
    """How gifted coins become diamonds: the creator's share, the platform's the rest; cents per diamond."""

    version: int
    diamonds_per_coin: int
    creator_share_percent: int
    diamonds_per_cent: int

    def split(self, coins: int) -> tuple[int, int]:
        """(creator diamonds, platform diamonds) for `coins` gifted; rounding favours neither, the sum is exact."""
        total = coins * self.diamonds_per_coin
        creator = total * self.creator_share_percent // 100
        return creator, total - creator


@dataclass(frozen=True)
class Catalogue:
    packages: dict[str, CoinPackage]
    gift_version: int
    gifts: dict[str, Gift]
    rate: GiftRate

    def public_gifts(self) -> dict[str, Any]:
        return {"version": self.gift_version, "gifts": [asdict(g) for g in self.gifts.values()],
                "rate": asdict(self.rate)}


def _data() -> dict[str, Any]:
    return orjson.loads((importlib.resources.files("commerce") / "catalogue.json").read_bytes())


async def publish(pool: asyncpg.Pool) -> Catalogue:
    """Store every gift version and rate from catalogue.json that is not yet stored; the latest is current."""
    data = _data()
    async with pool.acquire() as conn, conn.transaction():
        for rate in data["gift_rates"]:
            await conn.execute(
                "INSERT INTO gift_rates (version, diamonds_per_coin, creator_share_percent, diamonds_per_cent)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                rate["version"], rate["diamonds_per_coin"], rate["creator_share_percent"], rate["diamonds_per_cent"],
            )
        for version in data["gift_versions"]:
            await conn.executemany(
                "INSERT INTO gift_catalogue (version, gift_id, name, icon_url, coins) VALUES ($1, $2, $3, $4, $5)"
                " ON CONFLICT (version, gift_id) DO UPDATE SET icon_url = EXCLUDED.icon_url"
                " WHERE gift_catalogue.icon_url <> EXCLUDED.icon_url",
                [(version["version"], g["id"], g["name"], g["icon_url"], g["coins"]) for g in version["gifts"]],
            )
        gift_version = await conn.fetchval("SELECT max(version) FROM gift_catalogue")
        gifts = await conn.fetch(
            "SELECT gift_id, name, icon_url, coins FROM gift_catalogue WHERE version = $1 ORDER BY coins", gift_version
        )
        rate = await conn.fetchrow("SELECT * FROM gift_rates ORDER BY version DESC LIMIT 1")
    return Catalogue(
        packages={p["id"]: CoinPackage(**p) for p in data["coin_packages"]},
        gift_version=gift_version,
        gifts={g["gift_id"]: Gift(g["gift_id"], g["name"], g["icon_url"], g["coins"]) for g in gifts},
        rate=GiftRate(rate["version"], rate["diamonds_per_coin"], rate["creator_share_percent"],
                      rate["diamonds_per_cent"]),
    )
