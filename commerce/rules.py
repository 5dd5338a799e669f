"""The money rules: who may buy, gift and cash out, and how much. Each refusal names its rule."""

from __future__ import annotations

import datetime as dt

from livecore.accounts import Account, is_adult
from livecore.http import Problem


def require_adult(account: Account, today: dt.date, action: str) -> None:
    if not is_adult(account, today):
        raise Problem(403, "rule-adults-only", f"you must be 18 or older to {action}", rule="adults_only")


def daily_spend_refused(limit_coins: int, coins: int) -> Problem:
    return Problem(
        429, "rule-daily-spend-limit",
        f"this gift would take you over the daily limit of {limit_coins} coins spent on gifts",
        rule="gift_coins_per_day_max", limit_value=limit_coins, coins=coins,
    )


def purchase_velocity_refused(limit: int) -> Problem:
    return Problem(
        429, "rule-purchase-velocity", f"at most {limit} coin purchases an hour; try again later",
        rule="purchases_per_hour_max", limit_value=limit,
    )


def utc_day(now_ms: int) -> dt.date:
    return dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC).date()
