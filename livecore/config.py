"""Node settings: one frozen dataclass, filled from defaults, `LIVECORE_*` environment variables and CLI flags.

Every limit the node enforces is a field here, with its unit last in the name, so `livecore serve --help`
lists them all and an operator can set any of them without reading code.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    host: str = _setting("127.0.0.1", "address to listen on")
    port: int = _setting(8080, "TCP port to listen on")
    data_dir: Path = _setting(Path(".livecore"), "where the embedded servers and recordings keep their data")
    node_id: str = _setting("", "this node's name in the node registry (default: host-port)")
    public_url: str = _setting("", "the URL viewers reach this node at (default: http://host:port)")
    database_url: str = _setting("", "PostgreSQL URL; empty starts the embedded PostgreSQL in the data dir")
    redis_url: str = _setting("", "Redis/Valkey URL; empty starts the embedded Valkey in the data dir")
    secret: str = _setting("", "token signing secret; empty uses the one stored in the database")
    seed_demo: bool = _setting(True, "create the demo creator, viewer and stream if missing")
    log_level: str = _setting("INFO", "log level (DEBUG, INFO, WARNING, ERROR)")

    token_ttl_s: int = _setting(7 * 24 * 3600, "lifetime of a session token")
    account_cache_ms: int = _setting(2000, "how long a node reuses an account it read (`grant` reaches nodes within)")
    account_cache_entries_max: int = _setting(100_000, "accounts remembered per node")
    db_pool_size_max: int = _setting(20, "PostgreSQL connections per node")
    shutdown_s_max: int = _setting(10, "how long a stopping node waits for busy database connections")
    redis_connections_max: int = _setting(64, "Redis connections per node (commands wait for a free one)")
    redis_wait_s_max: int = _setting(10, "how long a Redis command may wait for a free connection")

    ws_frame_bytes_max: int = _setting(4096, "largest inbound WebSocket frame answered with an error event")
    ws_frame_bytes_hard_max: int = _setting(65536, "inbound frame size above which the connection is closed")
    chat_chars_max: int = _setting(300, "longest chat message, in characters")
    chat_per_user_per_10s_max: int = _setting(10, "chat messages one user may send per 10 seconds")
    like_taps_per_user_per_s_max: int = _setting(20, "like taps one user may send per second")
    like_count_per_command_max: int = _setting(50, "largest `count` in one like command")
    connections_per_user_max: int = _setting(5, "simultaneous room WebSockets per user across all nodes")
    slow_mode_s_max: int = _setting(600, "longest slow-mode interval a moderator may set")
    blocked_words_max: int = _setting(200, "blocked words per room")
    timeout_s_max: int = _setting(7 * 24 * 3600, "longest chat timeout a moderator may give")
    chat_display_per_s_max: int = _setting(120, "chat messages per second a room shows; more are sampled")
    publish_queue_events_max: int = _setting(10000, "chat queued on a node for the bus; more is refused as busy")
    replay_events_max: int = _setting(1000, "room events kept for resume; older resumes get a reset")
    snapshot_recent_chat_max: int = _setting(30, "chat messages included in a join snapshot")
    backlog_events_max: int = _setting(500, "must-deliver events queued for a slow connection before it is closed")
    write_buffer_bytes_high: int = _setting(256 * 1024, "socket write buffer above which a connection is slow")
    tick_ms_min: int = _setting(20, "event coalescing tick for a small room")
    tick_ms_max: int = _setting(100, "event coalescing tick for the largest rooms")
    tick_viewers_per_ms: int = _setting(25, "viewers in a room per extra millisecond of tick")
    like_flush_ms: int = _setting(500, "how often a node publishes aggregated likes")
    presence_refresh_ms: int = _setting(1000, "how often a node reports its viewer counts")
    presence_ttl_ms: int = _setting(5000, "a node's viewer counts expire this long after its last report")

    stripe_secret_key: str = _setting("", "Stripe secret API key; empty takes payments through the local test provider")
    stripe_api_base: str = _setting("", "Stripe API base URL (a Stripe-compatible server); empty is Stripe's own")
    stripe_webhook_secrets: str = _setting("", "webhook signing secrets, comma-separated, newest first (rotation)")
    webhook_tolerance_s: int = _setting(300, "how far a webhook signature's timestamp may be from the node's clock")
    purchases_per_hour_max: int = _setting(10, "coin purchases one viewer may start per hour (velocity rule)")
    gift_coins_per_day_max: int = _setting(200_000, "coins one viewer may spend on gifts per UTC day")
    gift_count_per_send_max: int = _setting(99, "largest `count` in one gift request")
    gift_batch_max: int = _setting(32, "gifts committed together in one database round trip at most")
    gift_batch_workers: int = _setting(4, "gift batches committing at once per node")
    gift_queue_max: int = _setting(4000, "gifts waiting for a batch per node; more are refused with 503")
    gift_announce_queue_batches_max: int = _setting(1000, "committed gift batches waiting for their room events")
    gift_combo_window_ms: int = _setting(3000, "repeats of a gift within this window count up one combo")
    gift_combo_sweep_ms: int = _setting(250, "how often a node ends combos whose window has passed")
    gift_combo_sweep_batch_max: int = _setting(500, "combos ended per sweep at most")
    earnings_hold_s: int = _setting(7 * 24 * 3600, "how long gift earnings are held before they can be cashed out")
    payout_cents_min: int = _setting(1000, "smallest payout a creator may ask for, in cents")
    payout_retry_s: int = _setting(300, "a payout still pending this long (its answer was lost) is sent again")
    payout_retry_batch_max: int = _setting(100, "stuck payouts sent again per sweep at most")
    leaderboard_entries_max: int = _setting(10, "top gifters listed per stream")
    wallet_transactions_max: int = _setting(20, "recent transactions and payouts listed in the wallet")
    ledger_platform_shards: int = _setting(16, "shards per platform ledger account, to spread row locks")

    design_bytes_max: int = _setting(10 * 1024 * 1024, "largest design upload, in bytes")
    design_pixels_max: int = _setting(25_000_000, "most pixels (width x height) in a design; read before decoding")
    design_edge_px_min: int = _setting(64, "shortest side a design may have, in pixels")
    image_workers: int = _setting(2, "designs decoded and mockups drawn at once per node (threads)")
    image_queue_max: int = _setting(16, "image jobs waiting per node; more are refused with 503")
    mockup_edge_px: int = _setting(600, "width and height of a mockup image")
    mockups_cached_max: int = _setting(256, "mockup images a node keeps in memory")
    merch_fee_percent: int = _setting(10, "the platform's share of a product's price, in percent")
    merch_fee_fixed_cents: int = _setting(30, "the fixed fee per item sold (payment processing), in cents")
    products_per_creator_max: int = _setting(500, "products one creator may have")
    products_listed_max: int = _setting(100, "products listed per page of a shop")
    auction_duration_s_min: int = _setting(10, "shortest auction a creator may start")
    auction_duration_s_max: int = _setting(3600, "longest auction a creator may start")
    auction_snipe_window_ms: int = _setting(10_000, "default: a bid this close to the end extends it")
    auction_extension_ms: int = _setting(10_000, "default: time left after a late bid extends the end")
    auction_snipe_window_ms_max: int = _setting(60_000, "largest anti-sniping window a creator may set")
    auction_extension_ms_max: int = _setting(60_000, "largest extension a creator may set")
    auction_increment_steps_max: int = _setting(20, "steps in a custom increment table")
    auction_bid_cents_max: int = _setting(100_000_000, "highest bid, maximum or buy-it-now price, in cents")
    auction_bid_batch_max: int = _setting(128, "bids on one auction decided and committed in one round trip at most")
    auction_bid_queue_max: int = _setting(5000, "bids waiting for one auction per node; more are refused with 503")
    auction_commit_attempts_max: int = _setting(20, "tries to commit a batch when other nodes keep changing the lot")
    auction_sweep_ms: int = _setting(200, "how often a node closes auctions whose end has passed")
    auction_sweep_batch_max: int = _setting(100, "auctions closed per sweep at most")
    auctions_cached_max: int = _setting(1000, "open auctions a node keeps in memory to decide bids")
    auction_keys_cached_max: int = _setting(20_000, "idempotency keys of recent bids a node keeps per auction")
    auction_snapshot_bids_max: int = _setting(50, "latest bids in a join snapshot and kept per room per node")
    auction_bids_listed_max: int = _setting(500, "latest bids in GET /api/auctions/{id}")
    auction_announce_queue_max: int = _setting(10_000, "committed bid batches waiting for their room events")
    payment_methods_per_user_max: int = _setting(10, "saved payment methods per user")

    media_viewers_per_room_max: int = _setting(200, "WebRTC viewers of one room on this node; more get 503 + HLS")
    media_viewers_per_node_max: int = _setting(500, "WebRTC viewers on this node; more get 503 + HLS")
    media_keyframe_interval_ms: int = _setting(1000, "shortest interval between keyframe requests to a publisher")
    media_history_packets: int = _setting(512, "RTP packets kept per track to answer NACKs (a power of two)")
    media_ingest_timeout_ms: int = _setting(5000, "a publisher silent this long ends the stream")
    media_owner_ttl_ms: int = _setting(5000, "a media node's room ownership expires this long after its last refresh")
    media_relay_idle_ms: int = _setting(10000, "a relay from another node without viewers closes after this long")
    hls_segment_ms: int = _setting(2000, "target HLS segment duration")
    hls_window_segments: int = _setting(6, "HLS segments listed in the playlist and kept on disk per stream")
    recording_enabled: bool = _setting(True, "record each stream to an MP4 in the data dir")
    thumbnail_interval_ms: int = _setting(10000, "how often a live stream's thumbnail JPEG is refreshed")

    def __post_init__(self) -> None:
        if not self.node_id:
            object.__setattr__(self, "node_id", f"{self.host}-{self.port}")
        if not self.public_url:
            object.__setattr__(self, "public_url", f"http://{self.host}:{self.port}")
        object.__setattr__(self, "data_dir", Path(self.data_dir))

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def env_name(field_name: str) -> str:
    return "LIVECORE_" + field_name.upper()


def parse_value(kind: Any, raw: str) -> Any:
    """Turn a flag or environment string into the field's type, or raise ValueError naming the problem."""
    if kind in (bool, "bool"):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean, got {raw!r}")
    if kind in (int, "int"):
        return int(raw)
    if kind in (Path, "Path"):
        return Path(raw)
    return raw


def settings_from_env(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from `LIVECORE_*` variables, then explicit overrides (CLI flags, tests)."""
    environ = dict(os.environ) if environ is None else environ
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        raw = environ.get(env_name(f.name))
        if raw is not None and raw != "":
            try:
                values[f.name] = parse_value(f.type, raw)
            except ValueError as exc:
                raise ValueError(f"{env_name(f.name)}: {exc}") from exc
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Settings(**values)
