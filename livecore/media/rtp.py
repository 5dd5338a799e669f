"""RTP wire helpers for forwarding: keyframe detection on raw payloads and header building.

Pure functions over bytes, so they are tested against packets real encoders produce.
"""

from __future__ import annotations

import struct

H264_NAL_IDR = 5
H264_NAL_SPS = 7
H264_NAL_STAP_A = 24
H264_NAL_FU_A = 28

_HEADER_TAIL = struct.Struct("!HII")
_OSN = struct.Struct("!H")


def h264_starts_keyframe(payload: bytes) -> bool:
    """Whether this H.264 RTP payload (RFC 6184) begins a keyframe: an SPS, or the first fragment of an IDR slice."""
    if not payload:
        return False
    nal_type = payload[0] & 0x1F
    if nal_type == H264_NAL_SPS or nal_type == H264_NAL_IDR:
        return True
    if nal_type == H264_NAL_STAP_A:
        return len(payload) > 3 and (payload[3] & 0x1F) in (H264_NAL_SPS, H264_NAL_IDR)
    if nal_type == H264_NAL_FU_A:
        return len(payload) > 1 and bool(payload[1] & 0x80) and (payload[1] & 0x1F) == H264_NAL_IDR
    return False


def vp8_starts_keyframe(payload: bytes) -> bool:
    """Whether this VP8 RTP payload (RFC 7741) is the first packet of a key frame."""
    size = len(payload)
    if size < 2:
        return False
    first = payload[0]
    if not first & 0x10 or first & 0x07:  # S bit (start of partition) and partition index 0
        return False
    offset = 1
    if first & 0x80:  # X: extended control bits follow
        extended = payload[1]
        offset = 2
        if extended & 0x80:  # I: picture id, 7 or 15 bits
            if offset >= size:
                return False
            offset += 2 if payload[offset] & 0x80 else 1
        if extended & 0x40:  # L: TL0PICIDX
            offset += 1
        if extended & 0x30:  # T or K: TID/KEYIDX byte
            offset += 1
    return offset < size and not payload[offset] & 0x01  # P bit clear: key frame


def keyframe_detector(mime_type: str):  # type: ignore[no-untyped-def]
    """The keyframe test for a codec, or None when every packet is a valid starting point (audio)."""
    name = mime_type.lower()
    if name == "video/h264":
        return h264_starts_keyframe
    if name == "video/vp8":
        return vp8_starts_keyframe
    return None


def header_tail(sequence_number: int, timestamp: int, ssrc: int) -> bytes:
    """Bytes 2..11 of an RTP header: sequence number, timestamp, SSRC."""
    return _HEADER_TAIL.pack(sequence_number, timestamp, ssrc)


def build_packet(marker: int, payload_type: int, tail: bytes, payload: bytes) -> bytes:
    """A plain RTP packet without CSRCs or header extensions."""
    return bytes((0x80, (marker << 7) | payload_type)) + tail + payload


def build_rtx_packet(
    marker: int, rtx_payload_type: int, rtx_sequence_number: int, timestamp: int, rtx_ssrc: int,
    original_sequence_number: int, payload: bytes,
) -> bytes:
    """An RFC 4588 retransmission packet carrying the original sequence number before the payload."""
    tail = _HEADER_TAIL.pack(rtx_sequence_number, timestamp, rtx_ssrc)
    return build_packet(marker, rtx_payload_type, tail, _OSN.pack(original_sequence_number) + payload)
