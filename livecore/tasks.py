"""Stopping background tasks reliably."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("livecore.tasks")

RECANCEL_S = 0.1


async def stop_tasks(*tasks: asyncio.Task[object] | None, timeout_s: float = 10.0) -> None:
    """Cancel tasks and wait for them to end, cancelling again while one is still running.

    A single cancel() is not enough: a library call inside the task (redis-py's connection pool, for one) can
    swallow the CancelledError, and a loop that then goes on to its next sleep would never end.
    """
    pending = {t for t in tasks if t is not None and not t.done()}
    deadline = asyncio.get_running_loop().time() + timeout_s
    while pending and asyncio.get_running_loop().time() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_S)
    for task in pending:
        log.error("background task %s did not stop within %.0f s", task.get_name(), timeout_s)
