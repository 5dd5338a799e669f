"""A demo viewer's schedule: each kind of action on its own randomised timer, never faster than its pace allows,
so the demo stays well under the room's rate limits, and the first chat and gift come soon after joining."""

from __future__ import annotations

import random

import pytest

from livecore.config import Settings
from livecore.demo.audience import Pace, Schedule


@pytest.mark.parametrize("seed", range(5))
def test_actions_keep_their_pace_and_stay_under_the_chat_limit(seed: int) -> None:
    pace = Pace()
    schedule = Schedule(pace, random.Random(seed), now_s=100.0)
    done: dict[str, list[float]] = {"chat": [], "like": [], "gift": []}
    now_s = 100.0
    while now_s < 100.0 + 3600:
        action, due_s = schedule.next()
        assert due_s >= now_s - 1e-9, "the schedule never goes back in time"
        now_s = due_s
        done[action].append(now_s)
        schedule.done(action, now_s)
    assert pace.greeting_s[0] <= done["chat"][0] - 100.0 <= pace.greeting_s[1]
    assert pace.first_gift_s[0] <= done["gift"][0] - 100.0 <= pace.first_gift_s[1]
    for action, (low, high) in (("chat", pace.chat_s), ("like", pace.like_s), ("gift", pace.gift_s)):
        gaps = [b - a for a, b in zip(done[action], done[action][1:], strict=False)]
        assert low <= min(gaps) and max(gaps) <= high, action
        assert max(gaps) - min(gaps) > (high - low) / 2, f"{action} comes at varied intervals"
    chat_limit = Settings().chat_per_user_per_10s_max
    busiest = max(sum(1 for t in done["chat"] if start <= t < start + 10) for start in done["chat"])
    assert busiest <= chat_limit // 2, "a demo viewer stays far under the chat limit"
