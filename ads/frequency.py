"""Frequency caps: how many times each ad group was served to a user today, in one Redis hash per user.

The key carries the user in a hash tag (`ads:{u:123}:freq`), so in a Redis Cluster one user's counts live in one
slot. A serve counts first and checks after (HINCRBY's answer): two decisions for one user at once cannot both pass
the cap; the one that went over gives its count back and is not served.
"""

from __future__ import annotations

import redis.asyncio as redis

from ads.decisions import Choice, Decider
from ads.pacing import DAY_MS
from ads.targeting import Audience

KEY_TTL_S = 2 * 24 * 3600  # yesterday's fields age out with the key


def freq_key(user_id: int) -> str:
    return f"ads:{{u:{user_id}}}:freq"


def _field(day: int, ad_group_id: int) -> str:
    return f"{day}:{ad_group_id}"


class FrequencyCaps:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    async def served_today(self, user_id: int, now_ms: int) -> dict[int, int]:
        """Ad group id -> times served to this user today."""
        day = str(now_ms // DAY_MS)
        counts = await self.redis.hgetall(freq_key(user_id))
        found: dict[int, int] = {}
        for name, value in counts.items():
            field_day, _, group = name.decode().partition(":")
            if field_day == day:
                found[int(group)] = int(value)
        return found

    async def take(self, user_id: int, ad_group_id: int, cap: int, now_ms: int) -> bool:
        """Count one serve if the cap allows it; False (nothing counted) when it is reached."""
        key, name = freq_key(user_id), _field(now_ms // DAY_MS, ad_group_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, name, 1)
            pipe.expire(key, KEY_TTL_S)
            count, _ = await pipe.execute()
        if count <= cap:
            return True
        await self.redis.hincrby(key, name, -1)
        return False


async def choose_within_caps(decider: Decider, caps: FrequencyCaps, user_id: int, audience: Audience, now_ms: int,
                             retries_max: int) -> Choice | None:
    """The auction's winner among the ad groups this user has not reached the cap of, counted as served; when a
    concurrent serve took the winner's last showing, the auction runs again without it (at most `retries_max`)."""
    served = await caps.served_today(user_id, now_ms)
    groups = decider.inventory.groups
    capped = {g for g, count in served.items() if g in groups and count >= groups[g].frequency_per_day_max}
    for _ in range(retries_max):
        choice = decider.choose(audience, now_ms, frozenset(capped))
        if choice is None:
            return None
        if await caps.take(user_id, choice.group.id, choice.group.frequency_per_day_max, now_ms):
            return choice
        capped.add(choice.group.id)
    return None
