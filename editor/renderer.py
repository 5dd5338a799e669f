"""Render processes: each render runs in a process of its own (started from a forkserver that has PyAV loaded), at
most `processes_max` at once, reporting progress over a pipe the event loop reads without blocking.

A process of its own per render, rather than a pool, so cancelling kills exactly that render and a render killed
from outside (out of memory, SIGKILL) ends only its own job, which the caller then retries.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from editor.render import RenderPlan, render

Ending = Literal["done", "failed", "died", "cancelled"]
_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["editor.render"])


@dataclass(frozen=True)
class Outcome:
    ending: Ending
    detail: str = ""


def _render_in_child(plan: RenderPlan, pipe: multiprocessing.connection.Connection) -> None:
    try:
        render(plan, lambda fraction: pipe.send(("progress", fraction)))
    except Exception as exc:  # a bad source or a codec error: reported, not retried
        pipe.send(("failed", f"{type(exc).__name__}: {exc}"))
    else:
        pipe.send(("done", ""))
    finally:
        pipe.close()


class RenderProcesses:
    def __init__(self, processes_max: int) -> None:
        self.slots = asyncio.Semaphore(processes_max)
        self.running: dict[int, multiprocessing.process.BaseProcess] = {}
        self._cancelled: set[int] = set()

    def free(self) -> bool:
        return not self.slots.locked()

    async def run(self, edit_id: int, plan: RenderPlan, on_progress: Callable[[float], None]) -> Outcome:
        """Render in a new process; how it ended. The caller holds a slot (see `slots`)."""
        receiving, sending = _context.Pipe(duplex=False)
        process = _context.Process(target=_render_in_child, args=(plan, sending), name=f"livecore-edit-{edit_id}",
                                   daemon=True)
        process.start()
        sending.close()
        self.running[edit_id] = process
        try:
            message = await self._follow(receiving, on_progress)
            await asyncio.to_thread(process.join)
        except asyncio.CancelledError:
            process.kill()
            await asyncio.to_thread(process.join)
            raise
        finally:
            receiving.close()
            self.running.pop(edit_id, None)
        if edit_id in self._cancelled:
            self._cancelled.discard(edit_id)
            return Outcome("cancelled")
        if message is None:
            return Outcome("died", f"the render process ended with status {process.exitcode}")
        kind, detail = message
        return Outcome("done") if kind == "done" else Outcome("failed", detail)

    async def _follow(self, pipe: multiprocessing.connection.Connection,
                      on_progress: Callable[[float], None]) -> tuple[str, str] | None:
        """Pass progress on until the final message; None when the process ended without one."""
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[tuple[str, object] | None] = asyncio.Queue()

        def readable() -> None:
            try:
                while pipe.poll():
                    inbox.put_nowait(pipe.recv())
            except (EOFError, OSError):
                loop.remove_reader(pipe.fileno())
                inbox.put_nowait(None)

        loop.add_reader(pipe.fileno(), readable)
        try:
            while (message := await inbox.get()) is not None:
                kind, value = message
                if kind == "progress":
                    on_progress(float(value))  # type: ignore[arg-type]
                else:
                    return kind, str(value)
            return None
        finally:
            loop.remove_reader(pipe.fileno())

    def cancel(self, edit_id: int) -> bool:
        """Kill the edit's render if it runs here; whether it did."""
        process = self.running.get(edit_id)
        if process is None:
            return False
        self._cancelled.add(edit_id)
        process.kill()
        return True

    def stop(self) -> None:
        for process in self.running.values():
            process.kill()
