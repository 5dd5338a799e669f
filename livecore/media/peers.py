"""aiortc peer connections for the media plane: SDP checks, codec preferences and the taps on RTP paths.

aiortc decodes what it receives and encodes what it sends; the media plane does neither per viewer. Upstream,
a receiver is tapped so each parsed packet goes to a `Forwarder` before aiortc's own bookkeeping (NACKs, receiver
reports, bandwidth estimates), its decoder is stopped, and the encoded frames its jitter buffer reassembles go to
the forwarder's frame sinks (HLS and the recording) instead. Downstream, a sender is given a track that never yields
and its RTCP loop is replaced by the forwarder's sender reports (one pass over all viewers instead of a timer, an
SR and three coroutines per viewer per second); its feedback handler is replaced so NACKs and keyframe requests
reach the forwarder and receiver reports are not turned into stats nothing reads.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpCodecParameters,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.codecs import is_rtx
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.rtp import (
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpByePacket,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    RtpPacket,
    unwrap_rtx,
)

from livecore.http import Problem
from livecore.media.forwarder import Forwarder
from livecore.media.outlet import Outlet

log = logging.getLogger(__name__)

# Publishers are asked for H.264 first so HLS and recordings are a remux; VP8 is accepted and transcoded once.
VIDEO_PREFERENCE = ("video/H264", "video/VP8")
AUDIO_PREFERENCE = ("audio/opus",)
SDP_BYTES_MAX = 64 * 1024
# Closing a peer deletes its TURN allocations; aioice retransmits that Refresh for about a minute when the TURN server
# is gone, which would hold a viewer's DELETE or a node's shutdown. Past this the allocation is left to expire
# (RFC 8656 section 6) and the sockets are closed anyway.
PEER_CLOSE_S_MAX = 3.0
_pending: set[asyncio.Future[None]] = set()


@dataclass(frozen=True)
class IceSettings:
    """The STUN/TURN servers this node's own peers gather candidates from, and whether they use only relayed ones."""

    servers: tuple[RTCIceServer, ...] = ()
    relay_only: bool = False

    @classmethod
    def from_settings(cls, settings: Any) -> IceSettings:
        """`media_ice_servers` (comma-separated stun:/turn:/turns: URLs, the TURN ones with the username and
        credential settings) and `media_ice_transport_policy`."""
        servers = []
        for url in (u.strip() for u in settings.media_ice_servers.split(",")):
            if url.startswith(("turn:", "turns:")):
                servers.append(RTCIceServer(urls=url, username=settings.media_ice_username or None,
                                            credential=settings.media_ice_credential or None))
            elif url:
                servers.append(RTCIceServer(urls=url))
        return cls(tuple(servers), settings.media_ice_transport_policy == "relay")


def new_peer_connection(ice: IceSettings | None = None) -> RTCPeerConnection:
    """A peer connection with host candidates, and the STUN/TURN servers' candidates when `ice` names any (a TURN
    allocation per connection); without servers no STUN server is ever contacted."""
    if ice is None or not ice.servers:
        return RTCPeerConnection(RTCConfiguration(iceServers=[]))
    policy = RTCIceTransportPolicy.RELAY if ice.relay_only else RTCIceTransportPolicy.ALL
    return RTCPeerConnection(RTCConfiguration(iceServers=list(ice.servers), iceTransportPolicy=policy))


async def close_peer(pc: RTCPeerConnection) -> None:
    """Close `pc`, waiting at most PEER_CLOSE_S_MAX for its TURN server to free its allocations."""
    try:
        await asyncio.wait_for(pc.close(), PEER_CLOSE_S_MAX)
    except TimeoutError:
        log.warning("a peer connection's TURN server did not answer within %.0f s; its allocation will expire",
                    PEER_CLOSE_S_MAX)


def check_offer(text: str) -> RTCSessionDescription:
    """The offer as a session description, or a 400 naming what is wrong with it."""
    if len(text) > SDP_BYTES_MAX:
        raise Problem(400, "malformed-sdp", f"the SDP offer is over {SDP_BYTES_MAX} bytes")
    lines = text.replace("\r\n", "\n").split("\n")
    if not lines or lines[0].strip() != "v=0":
        raise Problem(400, "malformed-sdp", "an SDP offer starts with v=0")
    if not any(line.startswith(("m=audio", "m=video")) for line in lines):
        raise Problem(400, "malformed-sdp", "the SDP offer has no audio or video section")
    if not any(line.startswith("a=fingerprint:") for line in lines):
        raise Problem(400, "malformed-sdp", "the SDP offer has no DTLS fingerprint")
    return RTCSessionDescription(sdp=text, type="offer")


def offered_kinds(sdp: str) -> set[str]:
    """The media kinds an offer has sections for ("audio", "video")."""
    return {line[2:7] for line in sdp.splitlines() if line.startswith(("m=audio", "m=video"))}


async def apply_offer(pc: RTCPeerConnection, offer: RTCSessionDescription) -> None:
    """Set the remote offer; aiortc's parse and negotiation errors become a 400."""
    try:
        await pc.setRemoteDescription(offer)
    except Exception as exc:
        raise Problem(400, "malformed-sdp", f"the SDP offer was refused: {exc or type(exc).__name__}") from exc


async def answer(pc: RTCPeerConnection) -> str:
    """Create and apply the answer (ICE gathering completes inside, so it carries every candidate)."""
    await pc.setLocalDescription(await pc.createAnswer())
    return pc.localDescription.sdp


def preferences(kind: str, mime_types: tuple[str, ...]) -> list[RTCRtpCodecCapability]:
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    ordered = [c for mime in mime_types for c in codecs if c.mimeType.lower() == mime.lower()]
    return ordered + [c for c in codecs if c.mimeType.lower() == f"{kind}/rtx"]


def exact_preference(codec: RTCRtpCodecParameters) -> list[RTCRtpCodecCapability]:
    """Codec preferences that allow only `codec` (and its RTX), so a viewer gets what the publisher sends."""
    wanted = RTCRtpCodecCapability(mimeType=codec.mimeType, clockRate=codec.clockRate, channels=codec.channels,
                                   parameters=dict(codec.parameters))
    rtx = [c for c in RTCRtpSender.getCapabilities(codec.mimeType.split("/")[0]).codecs if is_rtx(c)]
    return [wanted, *rtx]


def media_codec(transceiver: RTCRtpTransceiver) -> RTCRtpCodecParameters | None:
    """The negotiated media codec of a transceiver (its first non-RTX codec)."""
    return next((c for c in transceiver._codecs if not is_rtx(c)), None)


def rtx_payload_type(transceiver: RTCRtpTransceiver, codec: RTCRtpCodecParameters) -> int | None:
    return next((c.payloadType for c in transceiver._codecs
                 if is_rtx(c) and c.parameters.get("apt") == codec.payloadType), None)


def tap_receiver(transceiver: RTCRtpTransceiver, forwarder: Forwarder) -> None:
    """Send every packet this receiver gets to `forwarder` (RTX unwrapped) and never decode it."""
    receiver: RTCRtpReceiver = transceiver.receiver
    rtx_apt = {c.payloadType: c.parameters["apt"] for c in transceiver._codecs if is_rtx(c)}
    handle_rtp = receiver._handle_rtp_packet
    forward = forwarder.forward_packet
    upstream = {"ssrc": 0}

    async def on_rtp(packet: RtpPacket, arrival_time_ms: int) -> None:
        apt = rtx_apt.get(packet.payload_type)
        if apt is None:
            upstream["ssrc"] = packet.ssrc
            forward(packet)
        elif len(packet.payload) > 2:
            forward(unwrap_rtx(packet, payload_type=apt, ssrc=upstream["ssrc"]))
        await handle_rtp(packet, arrival_time_ms)

    jitter_buffer = receiver._RTCRtpReceiver__jitter_buffer  # type: ignore[attr-defined]
    add_to_jitter_buffer = jitter_buffer.add

    def add_and_tap(packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli_flag, frame = add_to_jitter_buffer(packet)
        if frame is not None:
            for sink in forwarder.frame_sinks:
                sink(frame)
        return pli_flag, frame

    jitter_buffer.add = add_and_tap
    receive = receiver.receive

    async def receive_without_decoding(parameters: Any) -> None:
        await receive(parameters)
        receiver._RTCRtpReceiver__stop_decoder()  # type: ignore[attr-defined]

    def request_keyframe() -> None:
        if upstream["ssrc"]:
            task = asyncio.ensure_future(receiver._send_rtcp_pli(upstream["ssrc"]))
            _pending.add(task)
            task.add_done_callback(_pending.discard)

    receiver._handle_rtp_packet = on_rtp  # type: ignore[method-assign]
    receiver.receive = receive_without_decoding  # type: ignore[method-assign]
    forwarder.keyframes._send = request_keyframe


class SilentTrack(MediaStreamTrack):
    """A track that never yields a frame: the forwarder writes this sender's RTP, aiortc only its RTCP."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def recv(self) -> Any:
        await self._never
        raise AssertionError("unreachable")


def tap_sender(transceiver: RTCRtpTransceiver, forwarder: Forwarder) -> Outlet:
    """Make this viewer's sender an outlet of `forwarder`: same SSRC as every viewer, feedback to the forwarder."""
    sender: RTCRtpSender = transceiver.sender
    sender._ssrc = forwarder.ssrc
    codec = media_codec(transceiver)
    assert codec is not None
    outlet = Outlet(sender, codec.payloadType, rtx_payload_type(transceiver, codec))
    handle_rtcp = sender._handle_rtcp_packet

    async def on_rtcp(packet: Any) -> None:
        if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            return  # aiortc would keep them as stats for getStats(), which nothing reads for a forwarded track
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            forwarder.retransmit(outlet, packet.lost)
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
            forwarder.keyframes.request()
        else:
            await handle_rtcp(packet)

    async def rtcp_from_forwarder() -> None:
        """Stands in for aiortc's RTCP loop: the forwarder sends the reports; a BYE still ends the stream."""
        sender._RTCRtpSender__rtcp_started.set()  # type: ignore[attr-defined]
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            pass
        await sender._send_rtcp([RtcpByePacket(sources=[sender._ssrc])])
        sender._RTCRtpSender__rtcp_exited.set()  # type: ignore[attr-defined]

    sender._handle_rtcp_packet = on_rtcp  # type: ignore[method-assign]
    sender._run_rtcp = rtcp_from_forwarder  # type: ignore[method-assign]
    return outlet
