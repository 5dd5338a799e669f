"""The media plane: WHIP ingest, WHEP playback by packet forwarding, HLS, recordings, relays between nodes."""

from livecore.media.plane import MediaPlane
from livecore.media.routes import MEDIA, add_routes, cors_rules

__all__ = ["MEDIA", "MediaPlane", "add_routes", "cors_rules"]
