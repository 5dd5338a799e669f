"""The event plane's Prometheus figures, registered in the node's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

FLUSH_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
MUST_OUT_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1.0, 2.5, 5.0)


class SignalingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.connections = Gauge(
            "livecore_ws_connections", "Room WebSockets open on this node", registry=registry
        )
        self.rooms = Gauge("livecore_rooms_subscribed", "Rooms this node is subscribed to", registry=registry)
        self.events_in = Counter(
            "livecore_room_events_published", "Room events this node published", ["type"], registry=registry
        )
        self.events_out = Counter(
            "livecore_room_events_delivered", "Events written to connections (one per connection)",
            registry=registry,
        )
        self.frames_built = Counter(
            "livecore_room_frames_built", "Frames encoded; each is written to many connections", registry=registry
        )
        self.flush_cpu = Histogram(
            "livecore_room_flush_cpu_seconds", "CPU time (kernel's sends included) of one room flush with events: "
            "one write per connection; a busy room's tick is tick_flush_cost_multiple times this",
            buckets=FLUSH_BUCKETS_S, registry=registry,
        )
        self.flush_wall = Histogram(
            "livecore_room_flush_wall_seconds", "Wall time of one room flush with events; far above its CPU time "
            "when the node waits for a core", buckets=FLUSH_BUCKETS_S, registry=registry,
        )
        self.must_deliver_out = Histogram(
            "livecore_room_must_deliver_out_seconds", "From a must-deliver event's server timestamp (`ts`) to the end "
            "of the flush that wrote it to every connection of its room on this node process: the node's part of "
            "its delivery latency (the network and the viewer's reading come after)",
            buckets=MUST_OUT_BUCKETS_S, registry=registry,
        )
        self.lossy_dropped = Counter(
            "livecore_lossy_events_dropped", "Lossy events not delivered", ["reason"], registry=registry
        )
        self.slow_closes = Counter(
            "livecore_slow_consumer_closes", "Connections closed for falling behind", registry=registry
        )
        self.command_errors = Counter(
            "livecore_ws_command_errors", "Client commands answered with an error", ["code"], registry=registry
        )
        self.bus_gaps = Counter(
            "livecore_bus_gaps", "Sequence gaps seen on the bus and filled from the replay stream",
            registry=registry,
        )
        self.room_restarts = Counter(
            "livecore_room_restarts", "Rooms restarted in a new epoch because the bus lost their log (each viewer "
            "got a reset and a fresh snapshot)", registry=registry,
        )
