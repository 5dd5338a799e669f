"""The demo's viewers: seeded adult accounts that log in, buy coins through the payment provider's test card, join
the live room's WebSocket and chat, like and send gifts at a gentle, varied pace, like people in a quiet room.

Each viewer's actions are far below the room's rate limits: a chat at most every 9 s (`Pace.chat_s`) is two in ten
seconds at worst (the default limit is ten), a like command every few seconds with a handful of taps.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from livecore.demo.client import NodeClient, NodeRefusal
from livecore.demo.stage import DemoStream, Stage
from livecore.seed import DEMO_AUDIENCE, DemoAccount
from livecore.tasks import stop_tasks
from signaling import protocol

log = logging.getLogger("livecore.demo")

RETRY_S_MAX = 30.0  # the longest wait between attempts to join
REJOIN_PAUSE_S = 2.0  # after the room's socket closed while the stream is still live
GIFT_COINS_MAX = 99  # the demo viewers send the cheaper gifts only
TOP_UP_COINS = 1000  # the package a viewer buys when its coins run low
TEST_CARD = "4242424242424242"  # the local payment provider's card that pays
WALLET_WAIT_S = 10.0  # how long a purchase may take to reach the wallet (the provider's signed webhook)
WALLET_POLL_S = 0.2

# Plain text: a machine without a colour-emoji font (a fresh Debian, most servers) would show emoji as empty boxes.
GREETINGS = (
    "hi everyone", "hello from the demo audience!", "hey hey, just joined", "good to be here :)",
    "evening all!", "hi! what did I miss?",
)
CHAT_LINES = (
    "love these colours", "the picture is so smooth today", "what time is it where you are?",
    "that clock is hypnotic", "this is my favourite stream", "sending good vibes", "hello from the demo audience",
    "can you say hi to my friend?", "nice tone, very calming", "how long have you been streaming?",
    "first time here, this is fun", "the stripes keep going :D", "great show as always", "so good!!",
    "love the merch talk", "who else is watching at work?", "that beep is oddly satisfying",
    "can't wait for the next drop", "hi from Tokyo", "ok this is relaxing", "gift incoming!",
    "is the shop open yet?", "you're doing great", "*applause*", "thanks for streaming!", "lol",
    "so many colours", "stay hydrated everyone", "the blue bar is the best bar", "brb, getting tea",
)


@dataclass(frozen=True)
class Pace:
    """Seconds between one viewer's actions of each kind, drawn uniformly from each range."""

    chat_s: tuple[float, float] = (9.0, 24.0)
    like_s: tuple[float, float] = (3.0, 9.0)
    gift_s: tuple[float, float] = (15.0, 40.0)
    greeting_s: tuple[float, float] = (0.5, 3.0)  # the first chat after joining
    first_gift_s: tuple[float, float] = (3.0, 10.0)  # the first gift after joining


class Schedule:
    """When one viewer next chats, likes and sends a gift: each kind on its own randomised timer."""

    def __init__(self, pace: Pace, rng: random.Random, now_s: float) -> None:
        self.pace = pace
        self.rng = rng
        self.due_s = {
            "chat": now_s + rng.uniform(*pace.greeting_s),
            "like": now_s + rng.uniform(*pace.like_s),
            "gift": now_s + rng.uniform(*pace.first_gift_s),
        }

    def next(self) -> tuple[str, float]:
        """The next action and when it is due."""
        action = min(self.due_s, key=self.due_s.__getitem__)
        return action, self.due_s[action]

    def done(self, action: str, now_s: float) -> None:
        gap = {"chat": self.pace.chat_s, "like": self.pace.like_s, "gift": self.pace.gift_s}[action]
        self.due_s[action] = now_s + self.rng.uniform(*gap)


class Viewer:
    """One demo viewer, following the demo's live stream from room to room."""

    def __init__(self, client: NodeClient, stage: Stage, account: DemoAccount, pace: Pace,
                 rng: random.Random) -> None:
        self.client = client
        self.stage = stage
        self.account = account
        self.pace = pace
        self.rng = rng
        self.token: str | None = None
        self.coins = 0
        self.gifts: list[dict[str, Any]] = []  # the affordable part of the catalogue
        self.can_buy = True
        self.said: list[str] = []  # recent lines, not repeated soon

    async def run(self) -> None:
        ended: int | None = None
        while True:
            stream = await self.stage.wait_live(other_than=ended)
            socket = await self._join(stream)
            try:
                ended = stream.id if await self._take_part(stream, socket) else None
            except Exception as exc:  # a lost connection, or a surprise: either way the viewer joins again
                log.warning("demo: %s left room %d (%s: %s)", self.account.username, stream.id,
                            type(exc).__name__, exc)
            finally:
                await socket.close()
            if ended is None:
                await asyncio.sleep(REJOIN_PAUSE_S)

    async def _join(self, stream: DemoStream) -> aiohttp.ClientWebSocketResponse:
        retrying = AsyncRetrying(retry=retry_if_exception_type(Exception), before_sleep=self._log_retry,
                                 wait=wait_exponential_jitter(initial=1, max=RETRY_S_MAX))
        return await retrying(self._try_to_join, stream)

    async def _try_to_join(self, stream: DemoStream) -> aiohttp.ClientWebSocketResponse:
        try:
            if self.token is None:
                self.token = await self.client.log_in(self.account.username, self.account.password)
                self.gifts = await self._affordable_gifts()
            self.coins = (await self.client.call("GET", "/api/wallet", self.token))["coins"]
            socket = await self.client.http.ws_connect(
                self.client.url(f"/ws/rooms/{stream.id}"), protocols=(protocol.JSON,), heartbeat=30.0,
                headers={"Authorization": f"Bearer {self.token}"},
            )
        except (NodeRefusal, aiohttp.WSServerHandshakeError) as exc:
            if exc.status == 401:
                self.token = None  # expired: log in again next time
            raise
        log.info("demo: %s joined room %d", self.account.username, stream.id)
        return socket

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait_s = state.next_action.sleep if state.next_action else 0
        log.warning("demo: %s could not join (%s: %s); trying again in %.0f s", self.account.username,
                    type(error).__name__, error, wait_s)

    async def _affordable_gifts(self) -> list[dict[str, Any]]:
        catalogue = await self.client.call("GET", "/api/gifts")
        return [g for g in catalogue["gifts"] if g["coins"] <= GIFT_COINS_MAX]

    async def _take_part(self, stream: DemoStream, socket: aiohttp.ClientWebSocketResponse) -> bool:
        """Chat, like and gift until the room closes; True when it closed because the stream ended."""
        loop = asyncio.get_running_loop()
        listening = asyncio.create_task(self._listen(socket), name=f"demo {self.account.username} listening")
        schedule = Schedule(self.pace, self.rng, loop.time())
        try:
            while True:
                action, due_s = schedule.next()
                await asyncio.wait({listening}, timeout=max(0.0, due_s - loop.time()))
                if listening.done():
                    return listening.result()
                await self._act(action, stream, socket)
                schedule.done(action, loop.time())
        finally:
            await stop_tasks(listening)

    async def _listen(self, socket: aiohttp.ClientWebSocketResponse) -> bool:
        """Read the room until it closes; True when the stream ended."""
        async for message in socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            for event in protocol.decode_events(protocol.JSON, message.data):
                if event["type"] in ("snapshot", "stream") and event.get("state") == "ended":
                    return True
                if event["type"] == "error":
                    log.warning("demo: %s was refused %s: %s", self.account.username, event.get("command"),
                                event.get("detail"))
        return False

    async def _act(self, action: str, stream: DemoStream, socket: aiohttp.ClientWebSocketResponse) -> None:
        if action == "chat":
            await _send(socket, {"type": "chat", "text": self._line()})
        elif action == "like":
            await _send(socket, {"type": "like", "count": self.rng.randint(1, 6)})
        else:
            await self._send_gift(stream)

    def _line(self) -> str:
        lines = GREETINGS if not self.said else CHAT_LINES
        fresh = [line for line in lines if line not in self.said] or list(lines)
        line = self.rng.choice(fresh)
        self.said = [*self.said[-8:], line]
        return line

    async def _send_gift(self, stream: DemoStream) -> None:
        if not self.gifts:
            return
        gift = self.rng.choices(self.gifts, weights=[1 / math.sqrt(g["coins"]) for g in self.gifts])[0]
        count = self.rng.randint(1, 5) if gift["coins"] == 1 else 1
        assert self.token is not None
        try:
            if self.coins < gift["coins"] * count and not await self._buy_coins():
                return
            sent = await self.client.call("POST", f"/api/streams/{stream.id}/gifts", self.token, {
                "gift_id": gift["id"], "count": count, "idempotency_key": uuid.uuid4().hex,
            })
            self.coins = sent["coins_balance"]
        except NodeRefusal as exc:
            if exc.status == 401:
                self.token = None
                raise  # the session expired: join again, logged in afresh
            if exc.status == 402:
                self.coins = 0  # spent elsewhere: the next gift buys coins first
            log.info("demo: %s could not send a gift: %s", self.account.username, exc)

    async def _buy_coins(self) -> bool:
        """Buy a coin package through the local provider's test card, as pay.html does; wait for the webhook's
        coins to reach the wallet. False when coins cannot be bought here (the node takes payments via Stripe)."""
        if not self.can_buy:
            return False
        assert self.token is not None
        packages = (await self.client.call("GET", "/api/coins/packages"))
        if packages["provider"] != "local":
            self.can_buy = False
            log.info("demo: the demo viewers send no gifts: payments go through %s", packages["provider"])
            return False
        enough = [p for p in packages["packages"] if p["coins"] >= TOP_UP_COINS]
        package = min(enough, key=lambda p: p["coins"]) if enough else max(packages["packages"],
                                                                             key=lambda p: p["coins"])
        before = self.coins
        purchase = await self.client.call("POST", "/api/coins/purchases", self.token, {
            "package_id": package["id"], "idempotency_key": uuid.uuid4().hex,
        })
        await self.client.call("POST", f"/api/payments/local/{purchase['id']}/confirm", self.token,
                               {"card_number": TEST_CARD})
        loop = asyncio.get_running_loop()
        deadline_s = loop.time() + WALLET_WAIT_S
        while loop.time() < deadline_s:
            self.coins = (await self.client.call("GET", "/api/wallet", self.token))["coins"]
            if self.coins >= before + package["coins"]:
                log.info("demo: %s bought %d coins", self.account.username, package["coins"])
                return True
            await asyncio.sleep(WALLET_POLL_S)
        log.warning("demo: %s paid for %d coins but they did not arrive within %.0f s", self.account.username,
                    package["coins"], WALLET_WAIT_S)
        return False


async def _send(socket: aiohttp.ClientWebSocketResponse, command: dict[str, Any]) -> None:
    await socket.send_str(protocol.encode_command(protocol.JSON, command).decode())


class Audience:
    """The demo viewers, each in its own task."""

    def __init__(self, client: NodeClient, stage: Stage, accounts: tuple[DemoAccount, ...] = DEMO_AUDIENCE,
                 pace: Pace | None = None, rng: random.Random | None = None) -> None:
        rng = rng or random.Random()
        self.viewers = [Viewer(client, stage, account, pace or Pace(), random.Random(rng.random()))
                        for account in accounts]
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(v.run(), name=f"demo viewer {v.account.username}") for v in self.viewers]

    async def stop(self) -> None:
        await stop_tasks(*self._tasks)
