"""`livecore-loadtest run` against a real node: small scenarios, seconds long.

The node runs in the test's process (the node_factory fixture), the viewers in worker processes, and the load
tester's own parts (observers, senders) on the test's event loop, as they would on the command's.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from livecore.embedded import free_port
from loadtest import agent, htmlreport, ladder, outcome, scenario, show, wire
from loadtest.audience import AudienceViewer, Tally
from loadtest.servers import LivecoreServer
from loadtest.wsframe import OP_TEXT

UNLIMITED = 10**9
NODE_LIMITS = {"chat_per_user_per_10s_max": UNLIMITED, "connections_per_user_max": UNLIMITED,
               "like_taps_per_user_per_s_max": UNLIMITED}
CLI_TIMEOUT_S = 240


async def run_against(url: str, **values: Any) -> dict[str, Any]:
    chosen = scenario.load(None, {"targets": (url,), "drain_s": 20.0, **values})
    return await show.run(LivecoreServer(chosen), chosen, lambda message: None)


def assert_every_event_accounted(result: dict[str, Any]) -> None:
    counts = result["accounting"]
    for klass, expected in counts["expected"].items():
        assert counts["delivered"][klass] + counts["lost"][klass] == expected, klass
    assert counts["unexplained"] == {}


async def test_every_published_event_is_delivered_or_lost_exactly(node_factory: Any) -> None:
    node = await node_factory(**NODE_LIMITS)
    result = await run_against(node.url, viewers=24, rooms=2, workers=2, chat_per_s=10, must_per_s=2,
                               likes_per_s=5, duration_s=3)
    assert_every_event_accounted(result)
    sent, made = result["senders"]["sent"], result["senders"]["room_events"]
    assert sent == {"chat": 2 * 30, "must": 2 * 6, "like": 2 * 15}  # two rooms, per-room rates for 3 s
    assert made["chat"] == sent["chat"] and made["must"] == sent["must"]  # below the display rate: none sampled
    counts = result["accounting"]
    assert counts["viewers"] == 24 and result["viewers"]["connect_failed"] == 0
    assert counts["expected"]["chat"] == 12 * 30 * 2  # every viewer stayed: owed its room's every chat message
    assert counts["expected"]["must"] == 24 * 6
    assert counts["expected"]["like"] == 12 * made["like"]
    assert counts["lost"] == dict.fromkeys(counts["lost"], 0)
    assert result["viewers"]["duplicates"] == 0 and result["viewers"]["out_of_order"] == 0
    assert result["latency"]["summary"]["chat"]["samples"] > 0
    assert result["latency"]["summary"]["must_deliver"]["samples"] > 0


async def test_an_induced_disconnect_is_measured_as_a_resume(node_factory: Any) -> None:
    node = await node_factory(**NODE_LIMITS)
    result = await run_against(node.url, viewers=10, workers=1, chat_per_s=20, must_per_s=2, duration_s=3,
                               disconnects_per_s=4)
    seen = result["viewers"]
    assert seen["resumes"] >= 1
    assert seen["resumes_replayed"] == seen["resumes"] and seen["resumes_reset"] == 0
    assert seen["resume_ms"]["samples"] == seen["resumes"]
    assert seen["server_closes"] == {}  # the viewers' own disconnects are not counted as the server's
    assert_every_event_accounted(result)
    # The replay gave every resumed viewer what it missed while it was away.
    assert result["accounting"]["lost"] == dict.fromkeys(result["accounting"]["lost"], 0)
    assert result["accounting"]["expected"]["chat"] == 10 * 60


async def run_cli(*args: str) -> int:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loadtest.cli", "run", *args,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT_S)
    assert process.returncode in (0, 1), stderr.decode()[-2000:]
    return process.returncode


async def test_slo_sets_the_exit_code_and_the_report_holds_its_plots(node_factory: Any, tmp_path: Path) -> None:
    node = await node_factory(**NODE_LIMITS)
    small = ["--target", node.url, "--viewers", "8", "--chat-rate", "10", "--duration", "2", "--drain", "20"]
    html, met_json, missed_json = tmp_path / "report.html", tmp_path / "met.json", tmp_path / "missed.json"
    assert await run_cli(*small, "--slo", "loss=0,connect_failed=0", "--json", str(met_json),
                         "--html", str(html)) == 0
    # No delivery takes less than nothing: this SLO cannot be met, and the command says so.
    assert await run_cli(*small, "--slo", "loss=0,p99_ms=-1", "--json", str(missed_json)) == 1
    missed = json.loads(missed_json.read_text())
    assert not missed["slo_met"]
    assert {v["slo"]: v["met"] for v in missed["slo"]["livecore"]} == {"loss": True, "p99_ms": False}
    page = html.read_text()
    figures = page.split("<figure>")[1:]
    assert len(figures) == len(htmlreport.PLOTS)
    for (_, caption), figure in zip(htmlreport.PLOTS, figures, strict=True):
        assert caption in figure and "<svg" in figure and "<path" in figure  # drawn inline, with lines
    assert "<script" not in page and "src=" not in page  # self-contained: nothing to fetch
    met = json.loads(met_json.read_text())
    assert met["slo_met"] and met["results"][0]["accounting"]["loss"] == 0


# --- the pure parts ---------------------------------------------------------------------------------------------


def test_scenario_file_is_read_and_flags_override_it(tmp_path: Path) -> None:
    path = tmp_path / "show.toml"
    path.write_text('[scenario]\nviewers = 300\nrooms = 3\nchat_per_s = 40\nslo = "p99_ms=250,loss=0"\n'
                    '[scenario.settings]\nTICK_MS_MAX = 50\n')
    loaded = scenario.load(path, {"viewers": 600, "duration_s": None})
    assert (loaded.name, loaded.viewers, loaded.rooms, loaded.chat_per_s) == ("show", 600, 3, 40)
    assert loaded.slo == {"p99_ms": 250.0, "loss": 0.0}
    assert loaded.settings == {"tick_ms_max": "50"}


@pytest.mark.parametrize(("values", "named"), [
    ({"encoding": "xml"}, "encoding"), ({"peers": ("ably",)}, "ably"), ({"viewers": 2, "rooms": 3}, "rooms"),
    ({"chat_per_s": -1}, "chat_per_s"), ({"slo": {"p95": 1}}, "p95"), ({"colour": "red"}, "colour"),
])
def test_a_bad_scenario_is_refused_naming_what_is_wrong(values: dict[str, Any], named: str) -> None:
    with pytest.raises(scenario.ScenarioError, match=named):
        scenario.load(None, values)


def test_slo_text_is_parsed_and_refused_when_malformed() -> None:
    assert scenario.parse_slo("p99_ms=250, loss=0.01") == {"p99_ms": 250.0, "loss": 0.01}
    with pytest.raises(scenario.ScenarioError):
        scenario.parse_slo("p99_ms")
    with pytest.raises(scenario.ScenarioError):
        scenario.parse_slo("p99_ms=fast")


def frame(*events: dict[str, Any]) -> bytes:
    return orjson.dumps(list(events))


def test_viewer_tells_duplicates_from_late_events_and_keeps_its_start() -> None:
    tally = Tally()
    viewer = AudienceViewer(tally, wire.LIVECORE_JSON, room=0, node=0, sample_every_frames=1)
    viewer.on_message(OP_TEXT, frame({"type": "snapshot", "epoch": "e", "seq": 10, "ts": 0}), 0, 0)
    viewer.on_message(OP_TEXT, frame({"type": "chat", "seq": 11, "ts": 0}, {"type": "chat", "seq": 13, "ts": 0}),
                      0, 0)
    viewer.on_message(OP_TEXT, frame({"type": "chat", "seq": 13, "ts": 0}, {"type": "gift", "seq": 12, "ts": 0},
                                     {"type": "error", "code": "rate-limited", "ts": 0}), 0, 0)
    assert (tally.duplicates, tally.out_of_order) == (1, 1)
    assert viewer.delivered == Counter({"chat": 2, "gift": 1})
    assert tally.errors == Counter({"rate-limited": 1})
    assert viewer.since == "e:13"
    viewer.leave()
    assert viewer.record().start_seq == 10 and viewer.record().end_seq == 13


def test_socketio_frames_decode_to_events_and_pings_are_answered() -> None:
    assert wire.decode_events(wire.SOCKETIO, OP_TEXT, b'42["chat",{"seq":3,"ts":1}]') == [
        {"seq": 3, "ts": 1, "type": "chat"}]
    assert wire.decode_events(wire.SOCKETIO, OP_TEXT, b'0{"sid":"x"}') == []
    assert wire.control_reply(wire.SOCKETIO, b"2") == b"3"
    assert wire.control_reply(wire.LIVECORE_JSON, b"2") is None
    assert wire.encode_command(wire.SOCKETIO, {"type": "chat", "text": "hi"}) == b'42["chat",{"text":"hi"}]'


def test_slo_verdict_compares_each_limit_with_what_was_measured() -> None:
    summary = {"samples": 10, "p50_ms": 5, "p99_ms": 40, "max_ms": 50}
    result = {
        "latency": {"summary": {"chat": summary, "must": {**summary, "p99_ms": 90}, "all": summary,
                                "must_deliver": {**summary, "p99_ms": 90}}},
        "accounting": {"loss": 0.002},
        "viewers": {"connect_failed": 0, "resumes": 4, "resumes_reset": 1, "error_events": {"x": 1},
                    "server_closes": {"4008": 2}},
    }
    verdict = {v["slo"]: (v["measured"], v["met"]) for v in outcome.slo_verdict(
        result, {"p99_ms": 100, "must_p99_ms": 50, "loss": 0.001, "resume_failed": 0.25, "errors": 3})}
    assert verdict == {"p99_ms": (90, True), "must_p99_ms": (90, False), "loss": (0.002, False),
                       "resume_failed": (0.25, True), "errors": (3, True)}


async def test_an_agent_holds_its_share_of_the_viewers_with_its_clock_offset(
    node_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = await node_factory(**NODE_LIMITS)
    port = free_port()
    monkeypatch.setenv(agent.KEY_ENV, "test-key")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loadtest.cli", "agent", "--listen", f"127.0.0.1:{port}",
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        assert b"listening" in await asyncio.wait_for(process.stderr.readline(), CLI_TIMEOUT_S)
        result = await run_against(node.url, viewers=12, workers=1, chat_per_s=10, must_per_s=2, duration_s=2,
                                   agents=(f"127.0.0.1:{port}",))
    finally:
        process.terminate()
        await process.wait()
    [(address, clock)] = result["agents"].items()
    assert address == f"127.0.0.1:{port}"
    assert abs(clock["offset_ms"]) <= clock["round_trip_ms"]  # the same clock, within the probe's precision
    assert result["accounting"]["viewers"] == 12  # six here, six on the agent
    assert_every_event_accounted(result)
    assert result["accounting"]["expected"]["chat"] == 12 * 20


def test_clock_offset_comes_from_the_shortest_round_trip_and_moves_latencies() -> None:
    samples = [(100.0, 100.6, 101.0), (200.0, 200.252, 200.004), (300.0, 300.9, 301.0)]
    offset = agent.estimate_offset(samples)
    assert offset.offset_ms == pytest.approx(250) and offset.round_trip_ms == pytest.approx(4)
    assert agent.shifted({300: 2, 260: 1, 100: 4}, 250) == {50: 2, 10: 1, 0: 4}


def test_ladder_steps_are_parsed_and_a_server_falls_over_on_loss_latency_or_refusals() -> None:
    assert ladder.parse_ladder("500x50, 2000x100") == [(500, 50.0), (2000, 100.0)]
    with pytest.raises(scenario.ScenarioError, match="500by50"):
        ladder.parse_ladder("500by50")

    def result(loss: float, p99: int, failed: int) -> dict[str, Any]:
        return {"accounting": {"loss": loss}, "latency": {"summary": {"all": {"p99_ms": p99}}},
                "viewers": {"connect_failed": failed}, "scenario": {"viewers": 1000}}

    assert ladder.fell_over(result(0.0, 40, 0)) == ""
    assert ladder.fell_over(result(0.3, 40, 0)) == "lost 30.0%"
    assert ladder.fell_over(result(0.0, 4000, 50)) == "p99 4,000 ms, 50 viewers could not connect"
    steps = [{"step": "500x50", "fell_over": {"a": "", "b": "lost 2.0%"}},
             {"step": "2000x100", "fell_over": {"a": "p99 3,000 ms", "b": "lost 90.0%"}}]
    assert ladder.first_falls(steps) == {"a": "2000x100 (p99 3,000 ms)", "b": "500x50 (lost 2.0%)"}


async def test_gifts_and_bids_in_a_live_room_with_webrtc_and_hls_watchers(node_factory: Any) -> None:
    node = await node_factory(**NODE_LIMITS)
    result = await run_against(node.url, viewers=6, workers=1, chat_per_s=5, must_per_s=0, gifts_per_s=4,
                               bids_per_s=2, duration_s=4, whep_viewers=1, hls_pullers=1)
    assert_every_event_accounted(result)
    sent = result["senders"]["sent"]["gift"]
    assert sent == 16 and result["senders"]["errors"] == {}  # no gift and no bid refused
    assert result["senders"]["gift_commit_ms"]["samples"] == sent  # every gift was booked and answered
    assert result["accounting"]["expected"]["gift"] >= 6 * sent  # each gift event, and its combo's end
    assert result["accounting"]["lost"]["gift"] == 0
    bids = result["senders"]["sent"]["bid"]
    assert bids == 8 and result["senders"]["bid_commit_ms"]["samples"] == bids  # each bid booked in order
    assert result["accounting"]["expected"]["bid"] >= 6 * bids and result["accounting"]["lost"]["bid"] == 0
    [whep] = result["media"]["whep"]
    assert whep["connected"] and whep["video_packets"] > 0 and whep["kbit_s"] > 0, result["media"]
    assert len(result["media"]["first_keyframe_ms"]) == 1, result["media"]  # a keyframe seen, none decoded
    [hls] = result["media"]["hls"]
    assert hls["playlists"] >= 1 and hls["errors"] == 0, result["media"]
