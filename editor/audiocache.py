"""Sounds' audio files on this node's disk: a bounded cache of what PostgreSQL holds (the book of record), so a
sound is served and rendered from a local file whichever node took its upload.

At most `bytes_max` bytes; the least recently used go first (a response still sending one keeps its open file).
Requests for a file being read from the database wait for that read instead of starting their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path

# Reads the audio into the given path; its size in bytes.
Fill = Callable[[Path], Awaitable[int]]


class AudioCache:
    def __init__(self, root: Path, bytes_max: int) -> None:
        self.root = root
        self.bytes_max = bytes_max
        self._sizes: OrderedDict[str, int] = OrderedDict()  # file name -> bytes, least recently used first
        self._bytes = 0
        self._filling: dict[str, asyncio.Task[Path]] = {}

    @property
    def stored_bytes(self) -> int:
        return self._bytes

    def load(self) -> None:
        """Take over the files a previous run left (oldest first), then drop any excess (blocking: at start)."""
        self.root.mkdir(parents=True, exist_ok=True)
        found = sorted((p.stat().st_mtime, p.name, p.stat().st_size) for p in self.root.glob("*.m4a"))
        for _, name, size in found:
            self._sizes[name] = size
            self._bytes += size
        self._make_room(0)

    def path(self, name: str) -> Path:
        return self.root / name

    def add(self, name: str, size: int) -> None:
        """Count a file written at `path(name)` (an upload just checked)."""
        self._make_room(size)
        self._sizes[name] = size
        self._bytes += size

    async def get(self, name: str, fill: Fill) -> Path:
        """The local file `name`: kept already, from the read under way, or read now with `fill`."""
        path = self.path(name)
        if name in self._sizes:
            if path.is_file():
                self._sizes.move_to_end(name)
                return path
            self._bytes -= self._sizes.pop(name)  # removed behind our back: read again
        task = self._filling.get(name)
        if task is None:
            task = asyncio.create_task(self._fill(name, fill))
            self._filling[name] = task
            task.add_done_callback(lambda done: self._filled(name, done))
        return await asyncio.shield(task)  # one caller giving up does not cancel the others' read

    async def _fill(self, name: str, fill: Fill) -> Path:
        path = self.path(name)
        partial = path.with_name(f".{name}.{secrets.token_hex(4)}")
        try:
            size = await fill(partial)
            self._make_room(size)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        self._sizes[name] = size
        self._bytes += size
        return path

    def _filled(self, name: str, task: asyncio.Task[Path]) -> None:
        self._filling.pop(name, None)
        if not task.cancelled():
            task.exception()  # retrieved: every waiter has had it raised already

    def forget(self, name: str) -> None:
        """Stop counting a file removed by its owner."""
        size = self._sizes.pop(name, None)
        if size is not None:
            self._bytes -= size

    def _make_room(self, size: int) -> None:
        while self._sizes and self._bytes + size > self.bytes_max:
            oldest, oldest_size = self._sizes.popitem(last=False)
            self._bytes -= oldest_size
            with contextlib.suppress(FileNotFoundError):
                self.path(oldest).unlink()
