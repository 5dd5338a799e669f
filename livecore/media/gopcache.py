"""The packets of a video track's current group of pictures, from its keyframe: what a joining viewer is sent first.

A viewer that joins mid-stream cannot decode anything before a keyframe. Instead of waiting for the next one (up to
the publisher's keyframe interval, seconds with OBS or a remuxed HLS source), the forwarder sends a joiner the
packets from the last keyframe on, then the live ones; the joiner decodes the cached keyframe at once. The packets
are kept as the forwarder rewrote them (its sequence numbers and timestamps, shared by every viewer), so the cached
run and the live packets that follow it are one continuous stream. A group of pictures longer than the bounds is
dropped whole (a partial one cannot be decoded): joiners then wait for the next keyframe, as without the cache.
"""

from __future__ import annotations

CachedPacket = tuple[int, int, int, bytes]  # (sequence number, marker, timestamp, payload), as forwarded


class GopCache:
    """The current group of pictures of one track, at most `packets_max` packets and `bytes_max` payload bytes."""

    __slots__ = ("bytes_max", "keyframe_timestamp", "overflows", "packets", "packets_max", "payload_bytes")

    def __init__(self, packets_max: int, bytes_max: int) -> None:
        self.packets_max = packets_max
        self.bytes_max = bytes_max
        self.packets: list[CachedPacket] = []
        self.payload_bytes = 0
        self.keyframe_timestamp: int | None = None  # None: no complete group from a keyframe is held
        self.overflows = 0  # groups dropped for being over a bound

    @property
    def enabled(self) -> bool:
        return self.packets_max > 0 and self.bytes_max > 0

    @property
    def ready(self) -> bool:
        """Whether a joiner can start from what is held (it begins with a keyframe)."""
        return self.keyframe_timestamp is not None and bool(self.packets)

    def starts_new_group(self, timestamp: int, starts_keyframe: bool) -> bool:
        """Whether a packet starts a group other than the one held (a keyframe's later packets share its timestamp)."""
        return starts_keyframe and timestamp != self.keyframe_timestamp

    def would_overflow(self, payload: bytes) -> bool:
        return self.ready and (len(self.packets) >= self.packets_max
                               or self.payload_bytes + len(payload) > self.bytes_max)

    def add(self, packet: CachedPacket, starts_keyframe: bool) -> None:
        """Keep a forwarded packet: a new keyframe starts a new group; a group over a bound is dropped."""
        if not self.enabled:
            return
        payload = packet[3]
        if self.starts_new_group(packet[2], starts_keyframe):
            self.packets = [packet]
            self.payload_bytes = len(payload)
            self.keyframe_timestamp = packet[2]
        elif self.keyframe_timestamp is None:
            return  # mid-group: useless until the next keyframe
        elif self.would_overflow(payload):
            self.clear()
            self.overflows += 1
        else:
            self.packets.append(packet)
            self.payload_bytes += len(payload)

    def clear(self) -> None:
        self.packets = []  # a new list: a joiner part way through the old one is finished first by the forwarder
        self.payload_bytes = 0
        self.keyframe_timestamp = None
