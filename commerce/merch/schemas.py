"""The shapes the merch routes answer with, as `GET /api/openapi.json` describes them (the fuzz test checks that the
answers keep to them)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from commerce.schemas import Answer
from livecore.http import Id


class VariantView(Answer):
    id: str
    size: str | None
    colour: str | None
    colour_hex: str
    base_cost_cents: int = Field(description="what printing it costs the platform")


class BaseItemView(Answer):
    id: str
    name: str
    print_area: dict[str, int] = Field(description="where a design goes, in pixels of the mockup canvas")
    variants: list[VariantView]


class BaseItems(Answer):
    items: list[BaseItemView]


class DesignView(Answer):
    id: Id
    format: Literal["PNG", "JPEG"]
    content_type: Literal["image/png", "image/jpeg"]
    width: int
    height: int
    bytes: int


class Maker(Answer):
    id: Id
    username: str
    display_name: str | None


class BaseItemName(Answer):
    id: str
    name: str


class OfferedVariantView(VariantView):
    price_cents: int
    mockup_url: str = Field(description="the variant's mockup (JPEG)")


class ProductView(Answer):
    id: Id
    title: str
    price_cents: int
    currency: Literal["USD"]
    creator: Maker
    design_id: Id
    base_item: BaseItemName
    variants: list[OfferedVariantView]
    created_at: int = Field(description="Unix milliseconds")


class Products(Answer):
    products: list[ProductView]
    next_before: int | None = Field(description="?before= for the next page; null on the last")


class PinView(Answer):
    stream_id: Id
    product: ProductView | None = Field(description="null once unpinned")
    pin_version: int = Field(description="counts the room's pin changes; the newest wins")
