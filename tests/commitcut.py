"""A TCP proxy between a node and PostgreSQL that loses the answer to one committed transaction: the server has
committed it, and the node's connection is cut before the node hears so (a network failure at the worst moment).

It reads the server's messages (PostgreSQL's wire protocol 3: a type byte, a 4-byte length, the payload), so the
node must connect without TLS (`sslmode=disable`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from livecore.embedded import EmbeddedPostgres
from livecore.outage import unreachable_part

READ_BYTES = 65536
NOTHING_FOUND = b"SELECT 0"  # the command tag of a read that found nothing (e.g. a look-up of the key)


class CommitCutter:
    """Forwards 127.0.0.1:`port` to PostgreSQL on `upstream_port`. `arm(marker)`: the next transaction whose
    statements carry `marker` (e.g. an idempotency key) and that wrote or returned rows without an error is
    committed (explicitly, or implicitly for one statement), then its connection is cut both ways before the
    answer reaches the client."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.cuts = 0
        self._marker: bytes | None = None
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres?sslmode=disable"

    def arm(self, marker: str) -> None:
        self._marker = marker.encode()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        marked = False

        async def upstream() -> None:
            nonlocal marked
            while data := await client_reader.read(READ_BYTES):
                if self._marker is not None and self._marker in data:
                    marked = True
                server_writer.write(data)
                await server_writer.drain()

        async def downstream() -> None:
            nonlocal marked
            pending, tags, failed = b"", [], False
            while data := await server_reader.read(READ_BYTES):
                pending += data
                committed = False
                while len(pending) >= 5 and len(pending) >= 1 + (length := int.from_bytes(pending[1:5], "big")):
                    kind, payload, pending = pending[:1], pending[5:1 + length], pending[1 + length:]
                    if not marked:
                        continue
                    if kind == b"E":
                        failed = True
                    elif kind == b"C":
                        tags.append(payload.rstrip(b"\0"))
                    elif kind == b"Z" and payload == b"I":  # ready, outside any transaction: it is over
                        committed = not failed and any(tag != NOTHING_FOUND for tag in tags)
                        marked, tags, failed = False, [], False
                if committed:
                    self._marker = None
                    self.cuts += 1
                    return  # committed on the server; its answer goes nowhere
                client_writer.write(data)
                await client_writer.drain()

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for writer in (client_writer, server_writer):
                writer.transport.abort()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def commit_cutter(database_url: str) -> AsyncIterator[CommitCutter]:
    """A started CommitCutter in front of the PostgreSQL at `database_url`, stopped on the way out."""
    cutter = CommitCutter(int(database_url.rsplit(":", 1)[1].split("/", 1)[0]))
    await cutter.start()
    try:
        yield cutter
    finally:
        await cutter.stop()


@contextlib.asynccontextmanager
async def lost_commit_then_database_stopped(cutter: CommitCutter, marker: str, sweep: Callable[[], Awaitable[Any]],
                                            postgres: EmbeddedPostgres) -> AsyncIterator[None]:
    """A sweep whose commit (the transaction carrying `marker`) is made but its answer lost, then PostgreSQL stopped
    under the next sweep: both are refused as the database being unreachable. The body runs while the server is
    stopped; it is started again after."""
    cutter.arm(marker)
    with pytest.raises(Exception) as lost:
        await sweep()
    assert cutter.cuts == 1 and unreachable_part(lost.value) == "database"  # committed; the node never heard
    await asyncio.to_thread(postgres.stop)
    try:
        with pytest.raises(Exception) as stopped:
            await sweep()
        assert unreachable_part(stopped.value) == "database"
        yield
    finally:
        await asyncio.to_thread(postgres.start)
