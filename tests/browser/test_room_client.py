"""The room WebSocket client (webui/static/js/room.js) against a scripted socket and a manual clock.

These run the real module in Chromium; only the transport and the timers are replaced, so the resume,
reconnect and like-aggregation policies are checked exactly, without waiting out real backoff delays.
"""

from __future__ import annotations

import mimetypes
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, Route

pytestmark = pytest.mark.browser

STATIC = Path(__file__).resolve().parents[2] / "webui" / "static"
HARNESS = Path(__file__).with_name("room_harness.js")
ORIGIN = "http://livecore.test"


async def _serve(route: Route) -> None:
    path = route.request.url.removeprefix(ORIGIN)
    if path == "/":
        await route.fulfill(body="<!doctype html><title>room.js</title>", content_type="text/html")
        return
    file = HARNESS if path == "/harness.js" else STATIC / path.lstrip("/")
    if not file.is_file() or (file != HARNESS and STATIC not in file.resolve().parents):
        await route.fulfill(status=404, body="not found")
        return
    kind = "text/javascript" if file.suffix == ".js" else mimetypes.guess_type(file.name)[0] or "text/plain"
    await route.fulfill(body=file.read_bytes(), content_type=kind)


@pytest_asyncio.fixture(loop_scope="session")
async def harness(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()
    page = await context.new_page()
    await page.route(f"{ORIGIN}/**", _serve)
    await page.goto(f"{ORIGIN}/")
    await page.evaluate(
        """async () => {
            const { createHarness } = await import("/harness.js");
            window.h = createHarness("42");
            h.client.connect();
        }"""
    )
    yield page
    await context.close()


async def run(page: Page, script: str) -> Any:
    return await page.evaluate(f"() => {{ {script} }}")


SNAPSHOT = """{type: "snapshot", epoch: "e1", seq: 5, ts: 1, viewers: 3, likes: 10, state: "live",
    slow_mode_s: 0, recent: [], you: {id: 1, username: "ann", is_moderator: false}}"""


async def test_first_connect_has_no_since_and_uses_json_subprotocol(harness: Page) -> None:
    first = await run(harness, "return {url: h.last().url, protocol: h.last().protocol};")
    assert first == {"url": "wss://live.example/ws/rooms/42", "protocol": "livecore.json"}


async def test_unexpected_close_resumes_from_last_seq_after_backoff(harness: Page) -> None:
    await run(harness, f"""h.last().open(); h.last().receive([{SNAPSHOT}]);
        h.last().receive([{{type: "chat", seq: 6, ts: 2, id: 9, user: {{id: 2, name: "bo"}}, text: "hi"}},
                          {{type: "viewers", ts: 3, count: 4}}]);
        h.last().drop(1006);""")
    status = await run(harness, "return h.statuses.at(-1);")
    # attempt 0: ceiling 500 ms, equal jitter with random() = 0.5 -> 375 ms
    assert status == {"state": "reconnecting", "delayMs": 375, "code": 1006}
    assert await run(harness, "h.advance(374); return h.sockets.length;") == 1
    assert await run(harness, "h.advance(1); return h.last().url;") == (
        "wss://live.example/ws/rooms/42?since=e1%3A6"
    )


async def test_backoff_grows_until_a_snapshot_arrives(harness: Page) -> None:
    delays = await run(harness, """const delays = [];
        for (let i = 0; i < 8; i++) {
            h.last().drop(1006);
            delays.push(h.statuses.at(-1).delayMs);
            h.advance(h.statuses.at(-1).delayMs);
        }
        return delays;""")
    assert delays == [375, 750, 1500, 3000, 6000, 12000, 22500, 22500]
    delay_after_join = await run(harness, f"""h.last().open(); h.last().receive([{SNAPSHOT}]);
        h.last().drop(1006); return h.statuses.at(-1).delayMs;""")
    assert delay_after_join == 375


async def test_slow_consumer_close_resumes_immediately(harness: Page) -> None:
    await run(harness, f"h.last().open(); h.last().receive([{SNAPSHOT}]); h.last().drop(4008);")
    status = await run(harness, "return h.statuses.at(-1);")
    assert status == {"state": "reconnecting", "delayMs": 0, "code": 4008}
    assert await run(harness, "h.advance(0); return [h.sockets.length, h.last().url];") == [
        2, "wss://live.example/ws/rooms/42?since=e1%3A5"
    ]


async def test_banned_close_stops_reconnecting(harness: Page) -> None:
    await run(harness, f"h.last().open(); h.last().receive([{SNAPSHOT}]); h.last().drop(4003);")
    assert await run(harness, "return h.statuses.at(-1).state;") == "banned"
    assert await run(harness, "h.advance(120000); return [h.sockets.length, h.pendingTimers()];") == [1, 0]


async def test_reset_moves_to_the_new_epoch(harness: Page) -> None:
    await run(harness, f"""h.last().open(); h.last().receive([{SNAPSHOT}]);
        h.last().receive([
            {{type: "reset", epoch: "e2", seq: 40, ts: 5, reason: "window"}},
            {{type: "snapshot", epoch: "e2", seq: 40, ts: 5, viewers: 1, likes: 0, state: "live",
              slow_mode_s: 0, recent: [], you: null}}]);
        h.last().drop(1001); h.advance(60000);""")
    assert await run(harness, "return h.last().url;") == "wss://live.example/ws/rooms/42?since=e2%3A40"
    kinds = await run(harness, "return h.events.map((event) => event.type);")
    assert kinds == ["snapshot", "reset", "snapshot"]


async def test_likes_are_aggregated_at_most_every_250_ms(harness: Page) -> None:
    await run(harness, "h.last().open(); h.client.like(); h.advance(100); h.client.like(); h.client.like();")
    assert await run(harness, "return h.last().sent;") == [{"type": "like", "count": 1}]
    assert await run(harness, "h.advance(149); return h.last().sent.length;") == 1
    assert await run(harness, "h.advance(1); return h.last().sent.at(-1);") == {"type": "like", "count": 2}


async def test_a_burst_of_likes_is_split_below_the_per_command_cap(harness: Page) -> None:
    sent = await run(harness, "h.last().open(); h.client.like(120); h.advance(1000); return h.last().sent;")
    assert [command["count"] for command in sent] == [50, 50, 20]
    assert {command["type"] for command in sent} == {"like"}


async def test_likes_tapped_while_disconnected_go_out_on_reconnect(harness: Page) -> None:
    await run(harness, "h.client.like(3); h.advance(1000);")
    assert await run(harness, "return h.last().sent;") == []
    assert await run(harness, "h.last().open(); return h.last().sent;") == [{"type": "like", "count": 3}]


async def test_close_by_the_page_does_not_reconnect(harness: Page) -> None:
    await run(harness, "h.last().open(); h.client.close(); h.advance(120000);")
    assert await run(harness, "return [h.sockets.length, h.statuses.at(-1).state];") == [1, "closed"]


async def test_a_quiet_connection_that_stayed_open_restarts_the_backoff(harness: Page) -> None:
    delays = await run(harness, """for (let i = 0; i < 3; i++) { h.last().drop(1006); h.advance(60000); }
        h.last().open(); h.advance(10000); h.last().drop(1006);
        return h.statuses.filter((s) => s.state === "reconnecting").map((s) => s.delayMs);""")
    assert delays == [375, 750, 1500, 375]


async def test_a_resume_that_replays_events_counts_as_joined(harness: Page) -> None:
    await run(harness, f"""h.last().open(); h.last().receive([{SNAPSHOT}]);
        h.last().drop(1006); h.advance(60000); h.last().open();
        h.last().receive([{{type: "like", seq: 6, ts: 2, count: 1, total: 11}}]);
        h.last().drop(4008);""")
    assert await run(harness, "return h.statuses.at(-1).delayMs;") == 0
    assert await run(harness, "h.advance(0); return h.last().url;") == "wss://live.example/ws/rooms/42?since=e1%3A6"
