"""The control plane: the room WebSocket, the event bus over Redis, presence, moderation and limits.

Public: `Plane` (the node's event plane, also the `RoomEvents` other contexts publish through), `add_routes`.
"""

from signaling.plane import Plane
from signaling.routes import PLANE, add_routes

__all__ = ["PLANE", "Plane", "add_routes"]
