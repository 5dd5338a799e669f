"""What every commerce routes module shares: the app key of the node's `Commerce` (its own module, so the routes
of commerce's subpackages can import it without importing the service that imports them) and idempotency keys, as
a body field or the Idempotency-Key header (documented by `Keyed`, `OptionallyKeyed` and `IdempotencyKey`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, TypeVar

from aiohttp import web
from pydantic import BaseModel, Field

from commerce.providers import DECLINED_CARD, SUCCEEDING_CARD
from livecore.http import NO_NUL, Parameters, Problem, parse_body, parse_headers

if TYPE_CHECKING:
    from commerce.service import Commerce

COMMERCE: web.AppKey[Commerce] = web.AppKey("commerce")
_KEY_TEXT = "makes a retry return the first result; may come as the Idempotency-Key header instead"


class Keyed(BaseModel):
    """A request that moves money: a retry with the same key returns the first result and changes nothing."""

    idempotency_key: str = Field(min_length=1, max_length=100, pattern=NO_NUL, description=_KEY_TEXT)


class OptionallyKeyed(BaseModel):
    """A request that makes something: with a key, a retry returns the first one instead of making another."""

    idempotency_key: str | None = Field(default=None, min_length=1, max_length=100, pattern=NO_NUL,
                                        description=_KEY_TEXT)

def _test_card(digits: str) -> str:
    return "[ -]?".join(digits[i:i + 4] for i in range(0, len(digits), 4))


class LocalCard(BaseModel):
    card_number: str = Field(
        pattern=f"^ *(?:{_test_card(SUCCEEDING_CARD)}|{_test_card(DECLINED_CARD)}) *$", examples=[SUCCEEDING_CARD],
        description=f"a test card: {SUCCEEDING_CARD} pays, {DECLINED_CARD} is declined (spaces or dashes allowed)")


class IdempotencyKey(Parameters):
    refusal: ClassVar[tuple[int, str] | None] = (400, "idempotency-key-required")
    key: str | None = Field(default=None, alias="Idempotency-Key", min_length=1, max_length=100, pattern=NO_NUL,
                            description="the body's idempotency_key, for clients that would rather send a header")


K = TypeVar("K", bound=Keyed | OptionallyKeyed)


async def keyed_body(request: web.Request, model: type[K]) -> K:
    """The body, its idempotency_key taken from the Idempotency-Key header when the body has none."""
    header = parse_headers(request, IdempotencyKey).key
    try:
        return await parse_body(request, model, defaults={"idempotency_key": header})
    except Problem as problem:
        if problem.extra.get("field") != "idempotency_key":
            raise
        raise Problem(400, "idempotency-key-required", "send an idempotency_key (body field or Idempotency-Key "
                      "header, 1-100 characters)", field="idempotency_key") from problem
