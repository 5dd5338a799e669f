"""Live streams: creating one (a room), going live while someone publishes, ending it, the live directory."""

from livecore.streams.lifecycle import end_overdue_streams, end_stream, go_live
from livecore.streams.streams import Stream, get_stream, live_streams, recorded_streams

__all__ = ["Stream", "end_overdue_streams", "end_stream", "get_stream", "go_live", "live_streams", "recorded_streams"]
