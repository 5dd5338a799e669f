"""PATCH on a WHIP or WHEP session (RFC 9725 section 4.3): trickled candidates, entity tags, ICE restarts.

Each session has an entity tag, sent as `ETag` with its 201. A PATCH whose `If-Match` names another tag is refused
with 412. aiortc cannot restart ICE, so a PATCH that asks for a restart (`If-Match: *`, or new ICE credentials in
the fragment) is refused with 422, as the RFC asks of a session that supports trickle ICE but not restarts.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from aiortc import RTCPeerConnection
from aiortc.sdp import candidate_from_sdp

from livecore.http import Problem

TRICKLE_TYPE = "application/trickle-ice-sdpfrag"


def new_etag() -> str:
    return f'"{secrets.token_urlsafe(12)}"'


def ice_ufrag(sdp: str) -> str:
    """The first ICE username fragment in an SDP offer or fragment ("" if it has none)."""
    for line in sdp.replace("\r\n", "\n").split("\n"):
        if line.startswith("a=ice-ufrag:"):
            return line[len("a=ice-ufrag:"):].strip()
    return ""


@dataclass
class SessionIce:
    """What a session's PATCH requests are checked against: its entity tag and the peer's ICE username fragment."""

    ufrag: str
    etag: str = field(default_factory=new_etag)

    def check_patch(self, if_match: str | None, fragment: str) -> None:
        """Raise the Problem a PATCH gets when it is a restart (422) or names another entity tag (412)."""
        tags = [tag.strip() for tag in (if_match or "").split(",") if tag.strip()]
        fragment_ufrag = ice_ufrag(fragment)
        if "*" in tags or (fragment_ufrag and self.ufrag and fragment_ufrag != self.ufrag):
            raise Problem(422, "ice-restart-unsupported",
                          "this server cannot restart ICE; end the session (DELETE) and start a new one")
        if tags and self.etag not in tags and f"W/{self.etag}" not in tags:
            raise Problem(412, "etag-mismatch", f"If-Match does not name this session's entity tag {self.etag}",
                          etag=self.etag)


async def add_candidates(pc: RTCPeerConnection, fragment: str) -> int:
    """Add the candidates of an RFC 8840 SDP fragment; returns how many."""
    added = 0
    mid = None
    for raw in fragment.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if line.startswith("a=mid:"):
            mid = line[6:]
        elif line.startswith("a=candidate:"):
            try:
                candidate = candidate_from_sdp(line[2:])
            except (ValueError, IndexError, AssertionError) as exc:  # aiortc asserts a line has all its fields
                raise Problem(400, "malformed-sdp", f"bad candidate line: {line[:80]}") from exc
            candidate.sdpMid = mid
            candidate.sdpMLineIndex = None if mid is not None else 0
            await pc.addIceCandidate(candidate)
            added += 1
    return added
