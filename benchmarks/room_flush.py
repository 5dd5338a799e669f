"""The CPU one room flush costs per viewer: `RoomHub.flush` writing one batch to N real loopback WebSockets.

The viewers are raw TCP sockets read by a child process (as a load generator would), so each write is the real
kernel send the node pays for. Printed: the flush's CPU time (`time.thread_time`, kernel time included) and wall
time per connection, median over the repeats, and how many events went out. Nothing else runs on the loop, so
this is the fan-out's own cost, without Redis, the publish path or the generator's share of the machine.

Run: `.venv/bin/python benchmarks/room_flush.py --viewers 1000 --repeats 200`
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import selectors
import socket
import statistics
import time
from types import SimpleNamespace

import uvloop
from prometheus_client import CollectorRegistry

from livecore.clock import Clock
from livecore.config import Settings
from signaling import protocol
from signaling.connection import Connection, Viewer
from signaling.hub import RoomHub
from signaling.metrics import SignalingMetrics

EVENTS_PER_FLUSH = 6  # about what a 2,000-viewer room at 100 chat/s puts in one frame
GAP_S = 0.02  # between flushes, so the reader keeps up and no connection turns slow


def read_forever(port: int, viewers: int, ready: multiprocessing.synchronize.Event) -> None:
    """The viewers' side: connect, then read and discard until the node closes."""
    selector = selectors.DefaultSelector()
    for _ in range(viewers):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    ready.set()
    open_count = viewers
    while open_count:
        for key, _ in selector.select(1):
            try:
                if not key.fileobj.recv(262144):  # type: ignore[union-attr]
                    selector.unregister(key.fileobj)
                    open_count -= 1
            except (BlockingIOError, ConnectionResetError):
                pass


async def run(viewers: int, repeats: int) -> dict[str, float]:
    transports: list[asyncio.Transport] = []
    all_connected = asyncio.Event()

    class Accept(asyncio.Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            transports.append(transport)
            if len(transports) == viewers:
                all_connected.set()

    loop = asyncio.get_running_loop()
    server = await loop.create_server(Accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ready = multiprocessing.Event()
    reader = multiprocessing.Process(target=read_forever, args=(port, viewers, ready), daemon=True)
    reader.start()
    await all_connected.wait()

    settings = Settings()
    metrics = SignalingMetrics(CollectorRegistry())
    hub = SimpleNamespace(settings=settings, metrics=metrics, clock=Clock())
    room = RoomHub(1, hub)  # type: ignore[arg-type]
    for transport in transports:
        conn = Connection(transport=transport, subprotocol=protocol.MSGPACK, viewer=Viewer(0, "viewer"),
                          metrics=metrics, write_buffer_bytes_high=settings.write_buffer_bytes_high,
                          backlog_events_max=settings.backlog_events_max, joining=False)
        room.connections.add(conn)

    cpu_us: list[float] = []
    wall_us: list[float] = []
    seq = 0
    for _ in range(repeats):
        for _ in range(EVENTS_PER_FLUSH):
            seq += 1
            room.pending.append({"type": "chat", "seq": seq, "id": seq, "ts": 0, "user": {"id": 7, "name": "ana"},
                                 "text": f"t={time.time_ns()} p=0"})
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        room.flush()
        cpu_us.append((time.thread_time() - cpu0) * 1e6 / viewers)
        wall_us.append((time.perf_counter() - wall0) * 1e6 / viewers)
        await asyncio.sleep(GAP_S)
    delivered = metrics.events_out._value.get()
    for transport in transports:
        transport.close()
    server.close()
    reader.join(10)
    return {"cpu_us": statistics.median(cpu_us), "wall_us": statistics.median(wall_us),
            "delivered": delivered, "expected": viewers * repeats * EVENTS_PER_FLUSH}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    result = uvloop.run(run(args.viewers, args.repeats))
    print(f"viewers {args.viewers}: flush CPU {result['cpu_us']:.2f} us per connection, wall {result['wall_us']:.2f}"
          f" us; delivered {result['delivered']:.0f} of {result['expected']}")


if __name__ == "__main__":
    main()
