"""One client WebSocket on a bare non-blocking socket: handshake, frame reassembly, ping/pong and close.

Every complete data message goes to `on_message(opcode, payload, arrived_ns, read_ns)`. `arrived_ns` is the
kernel's receive timestamp (SO_TIMESTAMPNS) of the read that completed the message, so latency measured from
it excludes the time the viewer process took to get round to this socket: with thousands of viewers in one
process, a frame sent to all of them at once waits up to a hundred milliseconds to be read by the last one,
and that wait is the load generator's, not the server's. `read_ns` is when the process read it.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from loadtest import wsframe

MessageHandler = Callable[[int, bytes, int, int], None]
ReadHandler = Callable[[int], None]  # after each read: how many messages it completed

HANDSHAKE_TIMEOUT_S = 30.0
RECV_BYTES = 256 * 1024
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; the socket module does not export it
TIMESTAMP_BYTES = socket.CMSG_SPACE(16)  # one struct timespec
_TIMESPEC = struct.Struct("@qq")


def kernel_time_ns(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    """The receive timestamp carried by recvmsg's ancillary data, in wall-clock nanoseconds."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            return seconds * 1_000_000_000 + nanoseconds
    return None


class ClientConnection:
    """A WebSocket client that hands each message to a callback and never queues what it receives."""

    def __init__(self, sock: socket.socket, request: bytes, key: str, on_message: MessageHandler,
                 on_read: ReadHandler | None = None) -> None:
        self._sock = sock
        self._key = key
        self._on_message = on_message
        self._on_read = on_read
        self._messages_in_read = 0
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._outbox = bytearray()
        self._fragments: list[bytes] = []
        self._fragment_opcode = 0
        self._upgraded = False
        self._open = True
        self.handshake: asyncio.Future[str] = self._loop.create_future()
        self.closed: asyncio.Future[int] = self._loop.create_future()
        self._loop.add_reader(sock.fileno(), self._on_readable)
        self._write(request)

    def send(self, opcode: int, payload: bytes) -> None:
        self._write(wsframe.client_frame(opcode, payload))

    def close(self, code: int = 1000) -> None:
        if self._open:
            self.send(wsframe.OP_CLOSE, wsframe.close_payload(code))
        self._shut(1000 if code in (1005, 1006) else code)

    def abort(self) -> None:
        self._shut(1006)

    def _on_readable(self) -> None:
        try:
            data, ancillary, _, _ = self._sock.recvmsg(RECV_BYTES, TIMESTAMP_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        if not data:
            self._lost(None)
            return
        read_ns = time.time_ns()
        self._messages_in_read = 0
        self.data_received(data, kernel_time_ns(ancillary) or read_ns, read_ns)
        if self._on_read is not None:
            # TCP keeps one arrival time for what queued up unread: the newest. So when a read completes several
            # messages, all but the last get a later arrival time than their own (an upper bound on latency).
            self._on_read(self._messages_in_read)

    def data_received(self, data: bytes, arrived_ns: int, read_ns: int) -> None:
        if self._buffer:
            self._buffer += data
            data = bytes(self._buffer)
            self._buffer.clear()
        if not self._upgraded:
            data = self._finish_handshake(data)
        offset = self._read_frames(data, arrived_ns, read_ns)
        if offset < len(data):
            self._buffer += data[offset:]

    def _write(self, data: bytes) -> None:
        """Send now if the socket takes it; what it does not take waits for it to become writable."""
        if not self._open:
            return
        if not self._outbox:
            try:
                sent = self._sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._lost(exc)
                return
            data = data[sent:]
            if not data:
                return
            self._loop.add_writer(self._sock.fileno(), self._flush_outbox)
        self._outbox += data

    def _flush_outbox(self) -> None:
        try:
            sent = self._sock.send(self._outbox)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        del self._outbox[:sent]
        if not self._outbox:
            self._loop.remove_writer(self._sock.fileno())

    def _lost(self, exc: Exception | None) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(exc or ConnectionError("closed during the handshake"))
        self._shut(1006)  # abnormal closure: no close frame was received

    def _shut(self, code: int) -> None:
        if not self.closed.done():
            self.closed.set_result(code)
        if self._open:
            self._open = False
            self._loop.remove_reader(self._sock.fileno())
            self._loop.remove_writer(self._sock.fileno())
            self._sock.close()

    def _finish_handshake(self, data: bytes) -> bytes:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if len(data) > wsframe.HEAD_BYTES_MAX:
                self._fail_handshake(wsframe.HandshakeError(0, "upgrade answer too long"))
                return b""
            self._buffer += data
            return b""
        try:
            subprotocol = wsframe.parse_upgrade_response(data[:end], self._key)
        except wsframe.HandshakeError as exc:
            body = data[end + 4 : end + 4 + 300].decode("utf-8", "replace")
            self._fail_handshake(wsframe.HandshakeError(exc.status, f"{exc.detail} {body}".strip()))
            return b""
        self._upgraded = True
        self.handshake.set_result(subprotocol)
        return data[end + 4 :]

    def _fail_handshake(self, exc: Exception) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(exc)
        self.abort()

    def _read_frames(self, data: bytes, arrived_ns: int, read_ns: int) -> int:
        """Deliver every complete frame in `data`; return where the incomplete remainder starts."""
        offset = 0
        while self._open:
            try:
                frame = wsframe.next_frame(data, offset)
            except ValueError:
                self.close(1002)
                break
            if frame is None:
                return offset
            fin, opcode, start, end = frame
            offset = end
            if opcode >= wsframe.OP_CLOSE:
                self._control(opcode, data[start:end])
            elif fin and opcode != wsframe.OP_CONTINUATION:
                self._messages_in_read += 1
                self._on_message(opcode, data[start:end], arrived_ns, read_ns)
            else:
                self._reassemble(fin, opcode, data[start:end], arrived_ns, read_ns)
        return len(data)

    def _reassemble(self, fin: bool, opcode: int, chunk: bytes, arrived_ns: int, read_ns: int) -> None:
        if opcode != wsframe.OP_CONTINUATION:
            self._fragment_opcode = opcode
        self._fragments.append(chunk)
        if fin:
            payload = b"".join(self._fragments)
            self._fragments.clear()
            self._messages_in_read += 1
            self._on_message(self._fragment_opcode, payload, arrived_ns, read_ns)

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == wsframe.OP_PING:
            self.send(wsframe.OP_PONG, payload)
        elif opcode == wsframe.OP_CLOSE:
            code = wsframe.close_code(payload)
            if not self.closed.done():
                self.closed.set_result(code)
            self.close(code)


async def open_connection(
    url: str, subprotocols: Sequence[str], on_message: MessageHandler, timeout_s: float = HANDSHAKE_TIMEOUT_S,
    on_read: ReadHandler | None = None,
) -> tuple[ClientConnection, str]:
    """Connect to a ws:// URL and finish the upgrade; return the connection and the agreed subprotocol."""
    parts = urlsplit(url)
    if parts.scheme != "ws" or parts.hostname is None:
        raise ValueError(f"only ws:// URLs are supported, got {url!r}")
    port = parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    key = wsframe.new_key()
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        await asyncio.wait_for(loop.sock_connect(sock, (parts.hostname, port)), timeout_s)
    except BaseException:
        sock.close()
        raise
    request = wsframe.upgrade_request(parts.hostname, port, target, key, subprotocols)
    connection = ClientConnection(sock, request, key, on_message, on_read)
    try:
        subprotocol = await asyncio.wait_for(asyncio.shield(connection.handshake), timeout_s)
    except BaseException:
        connection.abort()
        raise
    return connection, subprotocol
