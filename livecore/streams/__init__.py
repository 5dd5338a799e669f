"""Live streams: creating one (a room), ending it, the live directory."""

from livecore.streams.streams import Stream, get_stream

__all__ = ["Stream", "get_stream"]
