"""A run's scenario: who connects where, what they send and for how long, read from a TOML file and flags.

Flags override the file; the file overrides the defaults. Rates are per room. `slo` is what the run must meet
for the command to exit 0, e.g. `p99_ms=250,loss=0`.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest import wire

PEERS = ("python-socketio", "node-socketio")
SLO_KEYS = {
    "p99_ms": "p99 delivery latency of every class, ms (at most)",
    "p50_ms": "p50 delivery latency of every class, ms (at most)",
    "must_p99_ms": "p99 delivery latency of must-deliver events (gifts, moderation), ms (at most)",
    "loss": "share of expected events not delivered, 0..1 (at most)",
    "connect_failed": "viewers that could not connect (at most)",
    "resume_failed": "share of resumes answered with a reset instead of a replay, 0..1 (at most)",
    "errors": "error events and server-initiated closes (at most)",
}


class ScenarioError(ValueError):
    """A scenario file or flag that does not make sense; the message names it."""


@dataclass(frozen=True)
class Scenario:
    name: str = "custom"
    viewers: int = 200
    rooms: int = 1
    encoding: str = "msgpack"  # json | msgpack (livecore); peers always speak Socket.IO
    ramp_per_s: float = 500.0  # connections opened per second
    duration_s: float = 10.0
    chat_per_s: float = 20.0  # per room
    likes_per_s: float = 0.0
    gifts_per_s: float = 0.0
    must_per_s: float = 1.0  # must-deliver moderation events per room per second, from the creator
    bids_per_s: float = 0.0  # bids per room per second on an auction the tool opens (livecore; the room goes live)
    chatters: int = 4  # sending accounts per room (chat and likes)
    gifters: int = 2  # accounts per room that buy coins and send gifts (livecore; the room goes live for them)
    bidders: int = 2  # accounts per room with a saved test card that bid in turn
    whep_viewers: int = 0  # WebRTC viewers over WHEP, over all rooms (the rooms go live)
    hls_pullers: int = 0  # HLS players fetching playlist and segments, over all rooms (the rooms go live)
    churn_per_s: float = 0.0  # viewers leaving (and others joining) per second, over all rooms
    disconnects_per_s: float = 0.0  # induced network losses per second, each followed by a resume
    targets: tuple[str, ...] = ()  # node URLs; empty: start one node
    peers: tuple[str, ...] = ()  # also run the workload against these (see PEERS)
    workers: int = 1
    agents: tuple[str, ...] = ()  # HOST:PORT of `livecore-loadtest agent`s that hold a share of the viewers
    drain_s: float = 10.0  # longest wait for deliveries after sending stops
    display_per_s: int = 120  # the started node's chat display rate per room
    sample_every_frames: int = 0  # 0: chosen from the audience size
    settings: dict[str, str] = field(default_factory=dict)  # extra settings for the started node
    slo: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.encoding not in ("json", "msgpack"):
            raise ScenarioError(f"encoding must be json or msgpack, got {self.encoding!r}")
        for peer in self.peers:
            if peer not in PEERS:
                raise ScenarioError(f"unknown peer {peer!r}; known: {', '.join(PEERS)}")
        if self.viewers < 1 or self.rooms < 1 or self.rooms > self.viewers:
            raise ScenarioError("viewers and rooms must be at least 1, and rooms at most viewers")
        accounts = min(self.workers, self.chatters, self.gifters, self.bidders)
        if accounts < 1 or min(self.duration_s, self.ramp_per_s) <= 0:
            raise ScenarioError("duration_s, ramp_per_s, workers, chatters, gifters and bidders must be positive")
        if self.whep_viewers < 0 or self.hls_pullers < 0:
            raise ScenarioError("whep_viewers and hls_pullers cannot be negative")
        for name in ("chat_per_s", "likes_per_s", "gifts_per_s", "must_per_s", "bids_per_s", "churn_per_s",
                     "disconnects_per_s"):
            if getattr(self, name) < 0:
                raise ScenarioError(f"{name} cannot be negative")
        for key in self.slo:
            if key not in SLO_KEYS:
                raise ScenarioError(f"unknown SLO {key!r}; known: {', '.join(SLO_KEYS)}")

    @property
    def live(self) -> bool:
        """Whether the rooms must be live: gifts and auctions need a live stream, WHEP and HLS need media."""
        return self.gifts_per_s > 0 or self.bids_per_s > 0 or self.whep_viewers > 0 or self.hls_pullers > 0

    @property
    def wire(self) -> str:
        return wire.LIVECORE_MSGPACK if self.encoding == "msgpack" else wire.LIVECORE_JSON

    def latency_sample_every(self) -> int:
        """Frames per viewer between two decoded for latency: all of them for small runs, ~250 viewers' worth
        for large ones (decoding every frame would cost the generator more than the server)."""
        return self.sample_every_frames or max(1, self.viewers // 250)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_slo(text: str) -> dict[str, float]:
    """`p99_ms=250,loss=0` as {"p99_ms": 250.0, "loss": 0.0}."""
    slo = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = pair.partition("=")
        try:
            slo[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ScenarioError(f"--slo expects KEY=NUMBER pairs separated by commas, got {pair!r}")
    return slo


def load(path: Path | None, overrides: dict[str, Any]) -> Scenario:
    """The scenario in `path` (a `[scenario]` table, or top-level keys), with `overrides` (None values ignored)."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            document = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ScenarioError(f"cannot read scenario {path}: {exc}") from exc
        values.update(document.get("scenario", document))
        values.setdefault("name", path.stem)
        if isinstance(values.get("slo"), str):
            values["slo"] = parse_slo(values["slo"])
    values.update({key: value for key, value in overrides.items() if value is not None})
    known = {f.name for f in dataclasses.fields(Scenario)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ScenarioError(f"unknown scenario keys: {', '.join(unknown)}")
    for key in ("targets", "peers", "agents"):
        if key in values:
            values[key] = tuple(values[key])
    values["settings"] = {str(k).lower(): str(v) for k, v in values.get("settings", {}).items()}
    return Scenario(**values)
