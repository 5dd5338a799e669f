"""Background tasks stop even when something inside them swallows a cancellation."""

from __future__ import annotations

import asyncio

from livecore.tasks import stop_tasks


async def test_a_task_that_swallows_one_cancel_still_stops() -> None:
    swallowed = 0

    async def stubborn_loop() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                if swallowed == 0:  # as a library call that turns cancellation into an ordinary error would
                    swallowed += 1
                    continue
                raise

    task = asyncio.create_task(stubborn_loop())
    await asyncio.sleep(0)
    await stop_tasks(task, timeout_s=5)
    assert task.cancelled() and swallowed == 1


async def test_stopping_nothing_is_fine() -> None:
    await stop_tasks(None, timeout_s=1)
