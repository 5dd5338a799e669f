"""The wire formats: client commands, event frames in both subprotocols, WebSocket frame bytes, bus messages."""

from __future__ import annotations

import msgpack
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling import protocol
from signaling.bus import pack_message, unpack_message

EVENTS = [
    {"type": "chat", "seq": 7, "ts": 1, "id": 7, "user": {"id": 3, "name": "Zoë"}, "text": "héllo <b>"},
    {"type": "like", "seq": 8, "ts": 2, "count": 4, "total": 40},
]


@pytest.mark.parametrize("subprotocol", protocol.SUBPROTOCOLS)
def test_events_round_trip_in_both_subprotocols(subprotocol: str) -> None:
    payload = protocol.encode_events(subprotocol, EVENTS)
    assert protocol.decode_events(subprotocol, payload) == EVENTS


def test_json_and_msgpack_payloads_are_what_other_clients_expect() -> None:
    assert orjson.loads(protocol.encode_events(protocol.JSON, EVENTS)) == EVENTS
    assert msgpack.unpackb(protocol.encode_events(protocol.MSGPACK, EVENTS)) == EVENTS


@pytest.mark.parametrize(
    ("subprotocol", "payload", "code"),
    [
        (protocol.JSON, b"{not json", "malformed"),
        (protocol.JSON, b"[1, 2]", "malformed"),
        (protocol.JSON, b'{"text": "no type"}', "malformed"),
        (protocol.JSON, b'{"type": 5}', "malformed"),
        (protocol.MSGPACK, b"\xc1", "malformed"),
        (protocol.MSGPACK, msgpack.packb([1]), "malformed"),
        (protocol.MSGPACK, msgpack.packb({"type": "chat"}) + b"\x00", "malformed"),
        (protocol.MSGPACK, '{"type": "chat"}', "bad-frame"),
    ],
)
def test_bad_commands_raise_a_protocol_error_with_a_code(subprotocol: str, payload: bytes | str, code: str) -> None:
    with pytest.raises(protocol.ProtocolError) as caught:
        protocol.decode_command(subprotocol, payload)
    assert caught.value.code == code


@given(st.binary(max_size=300))
def test_no_byte_string_crashes_the_command_decoder(payload: bytes) -> None:
    for subprotocol in protocol.SUBPROTOCOLS:
        try:
            command = protocol.decode_command(subprotocol, payload)
        except protocol.ProtocolError:
            continue
        assert isinstance(command["type"], str)


def test_ws_frames_match_rfc6455_examples() -> None:
    # RFC 6455 section 5.7: an unmasked text frame "Hello" and the 256-byte and 64 KiB binary frame headers.
    assert protocol.ws_frame(protocol.OP_TEXT, b"Hello") == bytes.fromhex("810548656c6c6f")
    assert protocol.ws_frame(protocol.OP_BINARY, b"x" * 256)[:4] == bytes.fromhex("827e0100")
    assert protocol.ws_frame(protocol.OP_BINARY, b"x" * 65536)[:10] == bytes.fromhex("827f0000000000010000")


def test_close_frame_carries_the_code() -> None:
    frame = protocol.close_frame(protocol.CLOSE_SLOW_CONSUMER, "slow")
    assert frame[0] == 0x88 and frame[2:4] == (4008).to_bytes(2, "big") and frame[4:] == b"slow"


def test_since_is_parsed_or_refused() -> None:
    assert protocol.parse_since("ab12:42") == ("ab12", 42)
    for bad in ("42", ":42", "ab:", "ab:-1", "ab:x"):
        with pytest.raises(protocol.ProtocolError):
            protocol.parse_since(bad)


def test_bus_messages_carry_epoch_seq_and_like_total() -> None:
    like = unpack_message(pack_message("e1f2", 9, 120, {"type": "like", "count": 3, "ts": 5}))
    assert (like.epoch, like.seq) == ("e1f2", 9)
    assert like.event == {"type": "like", "count": 3, "ts": 5, "seq": 9, "total": 120}
    chat = unpack_message(pack_message("e1f2", 10, 120, {"type": "chat", "text": "a|b", "ts": 6}))
    assert chat.event["text"] == "a|b" and chat.event["id"] == 10


def test_must_deliver_classes() -> None:
    assert protocol.is_must_deliver({"type": "moderation"})
    assert protocol.is_must_deliver({"type": "stream"})
    assert not protocol.is_must_deliver({"type": "chat"})
    assert not protocol.is_must_deliver({"type": "like"})
