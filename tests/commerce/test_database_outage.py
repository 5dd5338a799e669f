"""PostgreSQL out from under money requests: stopped for a while during a run of gifts (on a PostgreSQL of the
test's own, so the session's stays up), and the answer to one gift's COMMIT lost on the wire.

Every request that fails for it answers 503 `livecore:unavailable` naming the database, with `Retry-After`, never
500; a retry with the same idempotency key returns the first result; every money invariant holds after.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from commitcut import commit_cutter
from livenode import NodeFactory, RunningNode, Servers
from money import api, assert_invariants, buy_coins, coins, key
from roomclient import events_until, send

from livecore.embedded import EmbeddedPostgres

WAIT_S_MAX = 60.0  # generous: other test runs share the machine
OUTAGE_ANSWERS_MIN = 5  # how many refused gifts make the outage seen
OUTAGE_S = 3.0  # how long PostgreSQL stays stopped (the fault's length, not a deadline of the node's)
ROSE_COINS = 1
REFUSED_PAUSE_S = 0.2  # between a sender's refused gift and its next one (500 coins outlast minutes of outage)


@dataclass
class Answer:
    key: str
    status: int
    body: Any
    retry_after: str | None
    phase: str  # before, during or after the outage
    at: float  # time.monotonic() when it came


@dataclass
class Gifts:
    """Gifts sent one after another with fresh keys, every answer kept, until told to stop."""

    node: RunningNode
    token: str
    path: str
    phase: str = "before"
    answers: list[Answer] = field(default_factory=list)
    stopping: bool = False

    async def send(self, idempotency_key: str) -> Answer:
        headers = {"Authorization": f"Bearer {self.token}"}
        body = {"gift_id": "rose", "idempotency_key": idempotency_key}
        async with self.node.http.post(self.node.url + self.path, json=body, headers=headers) as response:
            return Answer(idempotency_key, response.status, await response.json(content_type=None),
                          response.headers.get("Retry-After"), self.phase, time.monotonic())

    async def run(self) -> None:
        while not self.stopping:
            answer = await self.send(key())
            self.answers.append(answer)
            if answer.status != 200:  # a client backs off after a refusal; the retries must fit in the wallet
                await asyncio.sleep(REFUSED_PAUSE_S)

    def count(self, status: int, phase: str) -> int:
        return sum(a.status == status and a.phase == phase for a in self.answers)


async def _until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT_S_MAX
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.05)


async def test_postgres_stopped_during_gifts_answers_503_and_loses_no_money(
    own_postgres: EmbeddedPostgres, node_factory: NodeFactory, servers: Servers
) -> None:
    node = await node_factory(on=Servers(own_postgres.url, servers.redis_url, servers.directory))
    creator, viewer = await node.signup(), await node.signup()
    stream = await node.create_stream(creator["token"])
    await buy_coins(node, viewer["token"], "coins_500")
    bought = await coins(node, viewer["token"])
    room_socket = await node.ws(stream["id"], viewer["token"])
    await events_until(room_socket, lambda got: any(e["type"] == "snapshot" for e in got))
    gifts = Gifts(node, viewer["token"], f"/api/streams/{stream['id']}/gifts")
    sending = asyncio.create_task(gifts.run())
    try:
        await _until(lambda: gifts.count(200, "before") >= 5, "gifts went through before the outage")
        gifts.phase = "during"
        await asyncio.to_thread(own_postgres.stop)
        stopped_at = time.monotonic()
        await _until(lambda: gifts.count(503, "during") >= OUTAGE_ANSWERS_MIN
                     and time.monotonic() - stopped_at >= OUTAGE_S, "503s during an outage of a few seconds")
        await send(room_socket, {"type": "gift", "gift_id": "rose", "idempotency_key": key()})
        got = await events_until(room_socket, lambda got: any(e["type"] == "error" for e in got), WAIT_S_MAX)
        error = next(e for e in got if e["type"] == "error")
        assert error["code"] == "database-unavailable" and error["command"] == "gift", error
        await asyncio.to_thread(own_postgres.start)
        started_at = time.monotonic()
        gifts.phase = "after"
        await _until(lambda: gifts.count(200, "after") >= 5, "gifts went through after the outage")
        print(f"PostgreSQL down {started_at - stopped_at:.2f} s; first gift through "
              f"{_first_ok_after(gifts, started_at):.2f} s after it was back")
    finally:
        gifts.stopping = True
        await sending

    statuses = {a.status for a in gifts.answers}
    assert statuses <= {200, 503}, [(a.status, a.body) for a in gifts.answers if a.status not in (200, 503)]
    refused = [a for a in gifts.answers if a.status == 503]
    for answer in refused:
        assert answer.body["type"] == "livecore:unavailable" and answer.body["unavailable"] == "database", answer
        assert answer.retry_after is not None and int(answer.retry_after) >= 1, answer
    print(f"{len(gifts.answers)} gifts sent: {len(gifts.answers) - len(refused)} went through, {len(refused)} "
          f"answered 503")

    # A client does what Retry-After says: the same gift again, same key. Each goes through once.
    retried = [await gifts.send(answer.key) for answer in refused]
    assert {a.status for a in retried} == {200}, [(a.status, a.body) for a in retried]
    sent = [a for a in gifts.answers if a.status == 200] + retried
    assert len({a.body["transaction_id"] for a in sent}) == len({a.key for a in sent}) == len(sent)
    assert await coins(node, viewer["token"]) == bought - ROSE_COINS * len(sent)
    await assert_invariants(node)

    status, document = await api(node, "GET", "/api/openapi.json")
    assert status == 200
    documented = document["paths"]["/api/streams/{id}/gifts"]["post"]["responses"]["503"]
    assert "livecore:unavailable" in documented["content"]["application/problem+json"]["schema"]["properties"][
        "type"]["enum"] and "Retry-After" in documented["headers"]


def _first_ok_after(gifts: Gifts, started_at: float) -> float:
    """Seconds from PostgreSQL's restart to the first gift answered 200 after it."""
    return min(a.at for a in gifts.answers if a.status == 200 and a.at > started_at) - started_at


async def test_a_gift_whose_commit_answer_was_lost_returns_the_first_result_when_retried(
    node_factory: NodeFactory, servers: Servers
) -> None:
    async with commit_cutter(servers.database_url) as cutter:
        node = await node_factory(on=Servers(cutter.url, servers.redis_url, servers.directory))
        creator, viewer = await node.signup(), await node.signup()
        stream = await node.create_stream(creator["token"])
        await buy_coins(node, viewer["token"])
        before = await coins(node, viewer["token"])
        path = f"/api/streams/{stream['id']}/gifts"
        body = {"gift_id": "heart", "idempotency_key": key()}
        cutter.arm(body["idempotency_key"])
        status, lost = await api(node, "POST", path, viewer["token"], body)
        assert cutter.cuts == 1  # the gift's transaction was committed and its answer lost
        assert status == 503 and lost["type"] == "livecore:unavailable" and lost["unavailable"] == "database", lost
        status, again = await api(node, "POST", path, viewer["token"], body)
        assert status == 200 and again["replayed"], again  # the gift committed the first time, not now
        status, once_more = await api(node, "POST", path, viewer["token"], body)
        assert once_more["transaction_id"] == again["transaction_id"] and once_more["replayed"]
        assert await coins(node, viewer["token"]) == before - again["coins"]  # paid once
        rows = await node.node.pool.fetchval("SELECT count(*) FROM ledger_transactions WHERE external_id = $1",
                                             f"gift:{viewer['id']}:{body['idempotency_key']}")
        assert rows == 1
        await assert_invariants(node)
