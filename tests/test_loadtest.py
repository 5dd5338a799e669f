"""The load tester's pure parts: wire bytes, counting, percentiles, pacing and the report. No timing."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import struct
import threading
import time
from collections import Counter
from pathlib import Path

import msgpack
import orjson
import pytest

from loadtest import census, cli, connection, cpumeter, histogram, publisher, report, target, viewer, wsframe
from loadtest.audience import Tally
from loadtest.fleet import split_round_robin
from loadtest.naive_server import event_for
from loadtest.worker import WorkerReport
from signaling import protocol


def chat(seq: int, sent_ns: int = 1_000_000_000, ts: int = 1_000) -> dict:
    return {
        "type": "chat", "seq": seq, "ts": ts, "id": f"m{seq}", "user": {"id": "u1", "name": "ltpub0"},
        "text": viewer.chat_text(sent_ns, seq),
    }


def probe(seq: int, ts: int = 1_000) -> dict:
    return {"type": "moderation", "seq": seq, "ts": ts, "action": "slow_mode", "seconds": 0}


def snapshot(seq: int) -> dict:
    return {"type": "snapshot", "epoch": "e1", "seq": seq, "ts": 1_000, "recent": [chat(seq)], "viewers": 1}


def msgpack_frame(events: list[dict]) -> bytes:
    return protocol.encode_events(protocol.MSGPACK, events)


# --- percentiles --------------------------------------------------------------------------------------------


def test_percentile_is_nearest_rank() -> None:
    counts = {value: 1 for value in range(1, 101)}
    assert histogram.percentile(counts, 0.50) == 50
    assert histogram.percentile(counts, 0.99) == 99
    assert histogram.percentile(counts, 1.0) == 100
    assert histogram.percentile(counts, 0.0) == 1


def test_percentile_of_nothing_is_none_and_fraction_is_checked() -> None:
    assert histogram.percentile({}, 0.5) is None
    with pytest.raises(ValueError):
        histogram.percentile({1: 1}, 1.5)


def test_histogram_rounds_down_clamps_negative_and_merges() -> None:
    first, second = histogram.LatencyHistogram(), histogram.LatencyHistogram()
    for value in (0.4, 1.9, -3.0, 250.0):
        first.add_ms(value)
    second.add_ms(7.2)
    total = histogram.merged([first, second])
    assert total.counts == Counter({0: 2, 1: 1, 7: 1, 250: 1})
    summary = total.summary()
    assert (summary.samples, summary.p50_ms, summary.p99_ms, summary.max_ms) == (5, 1, 250, 250)


# --- WebSocket client framing -------------------------------------------------------------------------------


def test_accept_key_matches_rfc_6455_example() -> None:
    assert wsframe.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_upgrade_response_gives_subprotocol_or_refusal() -> None:
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    ok = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: livecore.msgpack"
    )
    assert wsframe.parse_upgrade_response(ok, key) == "livecore.msgpack"
    with pytest.raises(wsframe.HandshakeError) as refused:
        wsframe.parse_upgrade_response(b"HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain", key)
    assert refused.value.status == 401
    with pytest.raises(wsframe.HandshakeError):
        wsframe.parse_upgrade_response(ok.replace(b"s3pP", b"xxxx"), key)


def test_upgrade_request_offers_subprotocols_and_no_extensions() -> None:
    request = wsframe.upgrade_request("127.0.0.1", 8080, "/ws/rooms/r1?token=t", "k", ["livecore.msgpack"])
    assert request.startswith(b"GET /ws/rooms/r1?token=t HTTP/1.1\r\n")
    assert b"Sec-WebSocket-Protocol: livecore.msgpack\r\n" in request
    assert b"Extensions" not in request
    assert request.endswith(b"\r\n\r\n")


@pytest.mark.parametrize("size", [0, 5, 125, 126, 65535, 65536])
def test_client_frames_are_masked_and_unmask_to_the_payload(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    frame = wsframe.client_frame(wsframe.OP_BINARY, payload, mask=b"\x01\x02\x03\x04")
    assert frame[0] == 0x80 | wsframe.OP_BINARY
    assert frame[1] & 0x80  # the mask bit
    header = 2 + (2 if 126 <= size < 65536 else 8 if size >= 65536 else 0)
    assert frame[header : header + 4] == b"\x01\x02\x03\x04"
    assert wsframe.apply_mask(frame[header + 4 :], b"\x01\x02\x03\x04") == payload


@pytest.mark.parametrize("size", [3, 200, 70000])
def test_next_frame_finds_server_frames_of_every_length_encoding(size: int) -> None:
    payload = b"x" * size
    buffer = protocol.ws_frame(protocol.OP_BINARY, payload) + protocol.ws_frame(protocol.OP_TEXT, b"[]")
    fin, opcode, start, end = wsframe.next_frame(buffer, 0)
    assert (fin, opcode, buffer[start:end]) == (True, wsframe.OP_BINARY, payload)
    second = wsframe.next_frame(buffer, end)
    assert second is not None and buffer[second[2] : second[3]] == b"[]"
    assert wsframe.next_frame(buffer[: end - 1], 0) is None  # incomplete
    assert wsframe.next_frame(buffer, second[3]) is None  # nothing left


def test_masked_server_frame_is_refused_and_close_codes_are_read() -> None:
    with pytest.raises(ValueError):
        wsframe.next_frame(wsframe.client_frame(wsframe.OP_TEXT, b"hi"), 0)
    assert wsframe.close_code(wsframe.close_payload(4008, "slow")) == 4008
    assert wsframe.close_code(b"") == 1005


# --- counting frames without decoding them ------------------------------------------------------------------


@pytest.mark.parametrize("first", [1, 120, 300, 70_000, 5_000_000_000])
def test_census_counts_a_contiguous_chat_frame(first: int) -> None:
    frame = msgpack_frame([chat(first + n) for n in range(20)])
    assert census.census(frame) == census.Census(20, first, first + 19, 20, 0)


def test_census_counts_probes_among_chat_and_numbers_skipped() -> None:
    frame = msgpack_frame([chat(10), probe(11), chat(12)])
    assert census.census(frame) == census.Census(3, 10, 12, 2, 1)
    sampled = census.census(msgpack_frame([chat(10), chat(14), probe(15), chat(20)]))
    assert sampled == census.Census(4, 10, 20, 3, 1)
    assert sampled.seq_skipped == 7


@pytest.mark.parametrize(
    "events",
    [
        [chat(3), chat(2)],  # out of order
        [chat(1), {"type": "viewers", "ts": 1, "count": 5}, chat(2)],  # an event without seq
        [chat(1), {"type": "like", "seq": 2, "ts": 1, "count": 1, "total": 9}],  # a type it does not count
        [snapshot(7)],
    ],
)
def test_census_declines_frames_it_cannot_count_exactly(events: list[dict]) -> None:
    assert census.census(msgpack_frame(events)) is None


def test_census_reads_array_headers_and_unsigned_integers() -> None:
    assert census.array_length(msgpack.packb(list(range(20)))) == 20
    assert census.array_length(msgpack.packb(list(range(70_000)))) == 70_000
    assert census.array_length(msgpack.packb({"a": 1})) is None
    for value in (0, 127, 128, 255, 256, 65_536, 2**40):
        assert census.uint_at(msgpack.packb(value), 0) == value
    assert census.uint_at(msgpack.packb(-1), 0) is None


# --- viewers ------------------------------------------------------------------------------------------------


def test_viewer_counts_types_gaps_probes_and_latency_on_msgpack() -> None:
    tally = viewer.Tally()
    one = viewer.Viewer(tally, sample_every_frames=1)
    arrived_ns, read_ns = 1_050_000_000, 1_070_000_000  # 50 and 70 ms after the chat's sent_ns
    one.on_message(wsframe.OP_BINARY, msgpack_frame([snapshot(4)]), arrived_ns, read_ns)
    one.on_message(wsframe.OP_BINARY, msgpack_frame([chat(5), chat(6)]), arrived_ns, read_ns)
    one.on_message(wsframe.OP_BINARY, msgpack_frame([chat(9), probe(10, ts=1_040)]), arrived_ns, read_ns)
    assert tally.types == Counter({"snapshot": 1, "chat": 3, "moderation": 1})
    assert (tally.seq_missing, tally.seq_repeated, one.last_seq, one.probes) == (2, 0, 10, 1)
    assert tally.latency_publish.counts == Counter({50: 3})
    assert tally.latency_read.counts == Counter({70: 3})
    assert tally.latency_must.counts == Counter({10: 1})
    assert one.snapshot is not None and one.snapshot["seq"] == 4
    assert one.snapshot_first


def test_viewer_counts_the_same_on_the_fast_path_as_decoded() -> None:
    # Every fourth number is skipped, as when the room samples chat, and every 7th event is a probe.
    numbers = [n for n in range(1, 37) if n % 4]
    events = [probe(n) if n % 7 == 0 else chat(n) for n in numbers]
    chat_frames = [msgpack_frame(events[i : i + 3]) for i in range(0, len(events), 3)]
    frames = [msgpack_frame([snapshot(0)]), *chat_frames]
    sampled_always, rarely = viewer.Tally(), viewer.Tally()
    decoding, counting = viewer.Viewer(sampled_always, 1), viewer.Viewer(rarely, 1000)
    for frame in frames:
        decoding.on_message(wsframe.OP_BINARY, frame, 2_000_000_000, 2_000_000_000)
        counting.on_message(wsframe.OP_BINARY, frame, 2_000_000_000, 2_000_000_000)
    assert sampled_always.types == rarely.types == Counter({"snapshot": 1, "chat": 23, "moderation": 4})
    assert decoding.last_seq == counting.last_seq == 35
    assert decoding.probes == counting.probes == 4
    assert sampled_always.seq_missing == rarely.seq_missing == 8
    assert rarely.latency_publish.total < sampled_always.latency_publish.total == 23


def test_viewer_reads_json_frames_and_counts_repeats() -> None:
    tally = viewer.Tally()
    one = viewer.Viewer(tally, sample_every_frames=1)
    for events in ([snapshot(1)], [chat(2)], [chat(2)], [chat(3)]):
        one.on_message(wsframe.OP_TEXT, orjson.dumps(events), 2_000_000_000, 2_000_000_000)
    assert (tally.types["chat"], tally.seq_repeated, tally.seq_missing) == (3, 1, 0)
    one.on_message(wsframe.OP_TEXT, b"not json", 2_000_000_000, 2_000_000_000)
    assert tally.undecodable == 1


def test_chat_text_carries_the_send_time() -> None:
    assert viewer.sent_ns_of(viewer.chat_text(123_456, 7)) == 123_456
    assert viewer.sent_ns_of("hello") is None
    assert viewer.sent_ns_of("t=abc p=1") is None


# --- publishing schedule ------------------------------------------------------------------------------------


def test_due_count_follows_the_schedule_without_drift() -> None:
    assert publisher.due_count(-0.1, 100, 1000) == 0
    assert publisher.due_count(0.0, 100, 1000) == 1
    assert publisher.due_count(0.995, 100, 1000) == 100
    assert publisher.due_count(1.0, 100, 1000) == 101
    assert publisher.due_count(60.0, 100, 1000) == 1000


def test_every_kth_publish_is_a_probe() -> None:
    assert [i for i in range(10) if publisher.is_probe(i, 5)] == [4, 9]
    assert not any(publisher.is_probe(i, 0) for i in range(10))


# --- CPU accounting -----------------------------------------------------------------------------------------


def test_interpolate_reads_between_and_clamps_outside_samples() -> None:
    samples = [(10.0, 1.0), (11.0, 3.0), (13.0, 4.0)]
    assert cpumeter.interpolate(samples, 10.5) == pytest.approx(2.0)
    assert cpumeter.interpolate(samples, 12.0) == pytest.approx(3.5)
    assert cpumeter.interpolate(samples, 5.0) == 1.0
    assert cpumeter.interpolate(samples, 99.0) == 4.0
    assert cpumeter.interpolate([], 1.0) == 0.0


def test_embedded_services_are_told_apart_by_process_name() -> None:
    assert cpumeter.backing_service("valkey-server") == "valkey"
    assert cpumeter.backing_service("postgres") == "postgres"
    assert cpumeter.backing_service("livecore") is None


def test_the_kernels_part_of_a_process_cpu_is_measured_apart() -> None:
    # This process, sending on a real socket pair: what the kernel does for it is in the total and counted apart.
    meter = cpumeter.CpuMeter([cpumeter.ProcessGroup("server", lambda: [os.getpid()], with_children=False)])
    left, right = socket.socketpair()
    start = time.monotonic()
    meter.sample()
    for _ in range(20_000):
        left.send(b"x" * 64)
        right.recv(64)
    time.sleep(0.05)
    end = time.monotonic()
    meter.sample()
    total, kernel = meter.between(start, end)["server"], meter.between(start, end, kernel=True)["server"]
    assert 0 < kernel <= total + 1e-9  # both interpolated between the same samples: equal when it was all the kernel's


# --- report -------------------------------------------------------------------------------------------------


def worker_report(
    index: int, chat: int, probes_per_viewer: dict[int, int], latency: dict[int, int]
) -> WorkerReport:
    return WorkerReport(
        index=index, connected=sum(probes_per_viewer.values()), failed=0, failure_reasons=Counter(),
        close_codes=Counter(), types=Counter({"chat": chat, "moderation": 3, "viewers": 2}), frames=10,
        payload_bytes=1000, seq_missing=0, seq_repeated=0, undecodable=0,
        probes_per_viewer=Counter(probes_per_viewer), latency_publish=latency, latency_server=latency,
        latency_read=latency,
        latency_must={}, latency_join={5: 1}, last_workload_ns=0, snapshots=sum(probes_per_viewer.values()),
    )


def run_result(
    target: str, delivered_chat: int, server_cpu_s: float, max_latency_ms: int
) -> report.RunResult:
    reports = [
        worker_report(0, delivered_chat // 2, {1: 2}, {10: 198, max_latency_ms: 2}),
        worker_report(1, delivered_chat - delivered_chat // 2, {1: 1, 0: 1}, {10: 200}),
    ]
    totals = report.merge_reports(reports)
    probes_per_viewer = totals.pop("probes_per_viewer")
    return report.RunResult(
        target=target, workload=report.Workload(4, 100, 10, 10, None), chat_published=900,
        probes_published=1, publish_lag_max_s=0.001, publisher_errors={}, publisher_error_details={},
        window_s=10.0, publish_s=10.0, viewer_workers=2,
        viewers_missing_probes=report.viewers_missing(probes_per_viewer, 1),
        cpu_s={"server": server_cpu_s, "valkey": 0.5, "machine": server_cpu_s + 2.0}, **totals,
    )


def test_merged_reports_sum_workers_and_find_viewers_missing_probes() -> None:
    result = run_result("livecore", 3600, 2.0, 300)
    assert (result.connected, result.chat_delivered, result.probes_delivered) == (4, 3600, 6)
    assert result.other_events == {"viewers": 4}
    assert result.viewers_missing_probes == 1
    assert result.chat_expected == 3600 and result.probes_expected == 4
    assert result.latency_publish.p99_ms == 10 and result.latency_publish.max_ms == 300
    assert result.delivered_per_cpu_s() == pytest.approx(3606 / 2.0)
    assert result.other_cpu_s == pytest.approx(1.5)


def test_table_and_checks_compare_with_the_baseline() -> None:
    ours, naive = run_result("livecore", 3600, 1.0, 20), run_result("naive", 3600, 6.0, 900)
    assert report.ratio(ours, naive) == pytest.approx(6.0)
    text = report.table("fan-out", [ours, naive])
    assert "livecore / naive per CPU-s" in text and "6.0x" in text
    found = dict(report.checks(ours, naive))
    assert found["every chat event delivered"] is True
    assert found["every must-deliver event delivered to every viewer"] is False
    assert found["at least 5x the naive baseline's delivered events per server CPU-s"] is True
    assert orjson.dumps(ours.as_dict(), default=str)


# --- odds and ends ------------------------------------------------------------------------------------------


def test_split_round_robin_balances() -> None:
    assert split_round_robin(["a", "b", "c", "d", "e"], 2) == [["a", "c", "e"], ["b", "d"]]


def test_naive_server_turns_commands_into_events() -> None:
    event = event_for({"type": "chat", "text": "hi"}, "u1")
    assert event is not None and (event["type"], event["text"], event["user"]["id"]) == ("chat", "hi", "u1")
    assert event_for({"type": "slow_mode", "seconds": 0}, "c") == {
        "type": "moderation", "action": "slow_mode", "seconds": 0,
    }
    assert event_for({"type": "like", "count": 3}, "u1") is None


def test_scenario_presets_yield_to_explicit_flags() -> None:
    parser = cli.argparse.ArgumentParser()
    cli.fanout_parser(parser.add_subparsers())
    args = parser.parse_args(["fanout", "--scenario", "b", "--duration", "5"])
    workload = cli._workload(args, 120)
    assert (workload.viewers, workload.rate_per_s, workload.duration_s) == (5000, 500, 5)
    assert workload.must_every == 50


def test_probe_command_is_a_valid_client_frame() -> None:
    payload = protocol.encode_command(protocol.MSGPACK, publisher.PROBE_COMMAND)
    assert protocol.decode_command(protocol.MSGPACK, payload) == {"type": "slow_mode", "seconds": 0}
    assert struct.unpack("!H", wsframe.close_payload(1000))[0] == 1000


def test_kernel_receive_timestamp_is_read_from_ancillary_data() -> None:
    timespec = struct.pack("@qq", 1_700_000_000, 123)
    ancillary = [(socket.SOL_SOCKET, connection.SO_TIMESTAMPNS, timespec)]
    assert connection.kernel_time_ns(ancillary) == 1_700_000_000_000_000_123
    assert connection.kernel_time_ns([]) is None


async def test_messages_that_queued_up_unread_are_counted_as_read_behind_with_the_newest_arrival_time() -> None:
    # A real socket: the server sends two frames 200 ms apart while the viewer's loop is busy, so one read gets
    # both, and TCP reports one arrival time for the pair: the second's.
    listener = socket.create_server(("127.0.0.1", 0))
    sent_ns: list[int] = []

    def serve() -> None:
        peer, _ = listener.accept()
        head = peer.recv(4096).decode()
        key = next(line.split(":", 1)[1].strip() for line in head.split("\r\n")
                   if line.lower().startswith("sec-websocket-key"))
        peer.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + wsframe.accept_key(key).encode() + b"\r\n\r\n")
        for text in (b"first", b"second"):
            time.sleep(0.2)
            sent_ns.append(time.time_ns())
            peer.sendall(bytes([0x81, len(text)]) + text)  # a server's text frame: unmasked
        time.sleep(0.5)
        peer.close()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    got: list[tuple[bytes, int]] = []
    both = asyncio.Event()
    tally = Tally()

    def on_message(opcode: int, data: bytes, arrived_ns: int, read_ns: int) -> None:
        got.append((data, arrived_ns))
        if len(got) == 2:
            both.set()

    url = f"ws://127.0.0.1:{listener.getsockname()[1]}/"
    opened, _ = await connection.open_connection(url, [], on_message, on_read=tally.read)
    time.sleep(0.6)  # noqa: ASYNC251 - the point: the viewer's loop is busy while both frames arrive
    await asyncio.wait_for(both.wait(), 5)
    opened.abort()
    server.join()
    listener.close()
    assert [data for data, _ in got] == [b"first", b"second"]
    assert tally.read_behind == 1
    assert got[0][1] == got[1][1] >= sent_ns[1]  # the first frame's own arrival time is lost


@pytest.mark.parametrize(("per_viewer", "met"), [(1250, True), (1000, False), (1500, False)])
def test_sampled_chat_is_checked_against_the_display_rate(per_viewer: int, met: bool) -> None:
    sampled = dataclasses.replace(
        run_result("livecore", 4 * per_viewer, 1.0, 20),
        workload=report.Workload(4, 500, 10, 0, 120),
        chat_published=5000,
        probes_published=0,
        probes_delivered=0,
    )
    assert sampled.chat_sampled
    assert dict(report.checks(sampled, None))["chat sampled to the room's display rate (120/s)"] is met
    assert "(sampled to 120/s)" in report.table("b", [sampled])


def test_server_log_errors_are_grouped_by_message_and_exception(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    error = orjson.dumps(
        {"level": "error", "msg": "unhandled error", "exc": "Trace\nMaxConnectionsError: Too many"}
    )
    lines = [error, error, orjson.dumps({"level": "info", "msg": "ok"}), b"not json"]
    log.write_bytes(b"\n".join(lines))
    assert target.errors_in_log(log) == {"unhandled error: MaxConnectionsError: Too many": 2}
    assert target.errors_in_log(tmp_path / "missing.log") == {}
