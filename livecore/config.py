"""Node settings: one frozen dataclass, filled from defaults, `LIVECORE_*` environment variables and CLI flags.

Every limit the node enforces is a field here, with its unit last in the name, so `livecore serve --help`
lists them all and an operator can set any of them without reading code.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yarl

from livecore import redisclient
from livecore.startup import ExitCode, StartupError, env_name, flag_name

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
INT_LOW_DEFAULT = 1  # a whole-number setting is at least 1 unless its field says `low=`
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
WORKERS_MAX = 256

Check = Callable[[Any], "str | None"]


def _setting(default: Any, help: str, *, low: int | None = None, high: int | None = None,
             check: Check | None = None, default_text: str = "") -> Any:
    """A field with its help text and what makes a value acceptable: a range for numbers, a `check` that returns
    what is wrong with a value (or None). `default_text` says the default in `--help` when it is not a value."""
    return field(default=default, metadata={"help": help, "low": low, "high": high, "check": check,
                                            "default_text": default_text or str(default)})


def _url_problem(value: str, schemes: tuple[str, ...]) -> str | None:
    if not value:
        return None
    try:
        url = yarl.URL(value)
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if url.scheme not in schemes:
        return f"must be a {' or '.join(s + '://' for s in schemes)} URL"
    if url.scheme != "unix" and not url.host:
        return "names no host"
    return None


def _choice_problem(value: str, choices: tuple[str, ...]) -> str | None:
    return None if value in choices else f"must be one of {', '.join(choices)}"


def _power_of_two_problem(value: int) -> str | None:
    return None if value & (value - 1) == 0 else "must be a power of two"


_STRIPE_SECRET_KEY = re.compile(r"^(sk|rk)_(test|live)_[A-Za-z0-9_]+$")


def _stripe_key_problem(value: str) -> str | None:
    if not value or _STRIPE_SECRET_KEY.match(value):
        return None
    if value.startswith("pk_"):
        return "is a publishable key; the node needs the secret key (sk_...) or a restricted key (rk_...)"
    if value.startswith("whsec_"):
        return "is a webhook signing secret; it belongs in stripe_webhook_secrets"
    return "does not look like a Stripe secret key (sk_test_..., sk_live_..., rk_test_..., rk_live_...)"


def _webhook_secrets_problem(value: str) -> str | None:
    wrong = [i + 1 for i, part in enumerate(value.split(",")) if part.strip() and
             not part.strip().startswith("whsec_")]
    return f"secret {wrong[0]} does not start with whsec_ (a Stripe webhook signing secret)" if wrong else None


@dataclass(frozen=True)
class Settings:
    host: str = _setting("127.0.0.1", "address to listen on")
    port: int = _setting(8080, "TCP port to listen on", high=65535)
    data_dir: Path = _setting(Path(".livecore"), "where the embedded servers and recordings keep their data")
    node_id: str = _setting("", "this node's name in the node registry (default: host-port)")
    public_url: str = _setting("", "the URL browsers reach the service at: in a cluster, the load balancer's",
                               check=lambda v: _url_problem(v, ("http", "https")), default_text="http://host:port")
    internal_url: str = _setting("", "the URL other nodes reach this very node at, for relays and passed-on WHIP/WHEP "
                                     "session requests; never a load balancer's",
                                 check=lambda v: _url_problem(v, ("http", "https")),
                                 default_text="http://host:port; with a wildcard host, this machine's first address")
    database_url: str = _setting("", "PostgreSQL URL; empty starts the embedded PostgreSQL in the data dir",
                                 check=lambda v: _url_problem(v, ("postgresql", "postgres")))
    redis_url: str = _setting("", "Redis/Valkey URL; empty starts the embedded Valkey in the data dir; "
                                  "redis+cluster://host:port names a Redis/Valkey Cluster by any of its nodes",
                              check=lambda v: _url_problem(v, redisclient.URL_SCHEMES))
    secret: str = _setting("", "token signing secret; empty uses the one stored in the database")
    seed_demo: bool = _setting(True, "create the demo accounts (creator, viewer, demo audience) if missing")
    demo: bool | None = _setting(
        None, "run the live demo: a generated stream published over WHIP and demo viewers who chat and send gifts",
        default_text="on with the embedded PostgreSQL and the seed, else off",
    )
    log_level: str = _setting("INFO", "log level (DEBUG, INFO, WARNING, ERROR)",
                              check=lambda v: _choice_problem(v.upper(), LOG_LEVELS))
    startup_wait_s: int = _setting(30, "how long a starting node retries PostgreSQL and Redis (they may come up later)",
                                   low=0, high=3600)
    check_timeout_s: int = _setting(5, "how long `livecore check` waits for each answer over the network", high=300)
    clock_skew_ms_max: int = _setting(1000, "how far the clock may be from PostgreSQL's and Redis's (`livecore check`)")
    orphan_sweep_batch_max: int = _setting(500, "live streams a starting node checks per query for a lost publisher")
    workers: int = _setting(CORES, f"node processes serving the port together (SO_REUSEPORT), 1 to {WORKERS_MAX}, "
                                   "each a node of its own in the registry, restarted when it dies; 1 serves in this "
                                   "one process",
                            high=WORKERS_MAX, default_text=f"the number of cores, {CORES} here")
    worker_start_s_max: int = _setting(120, "how long a supervisor waits for a starting worker to serve (then it "
                                            "counts as a failed start)")
    worker_restart_delay_ms_min: int = _setting(500, "a worker that died is started again after this long; each "
                                                     "further quick death doubles the wait")
    worker_restart_delay_ms_max: int = _setting(30_000, "the longest wait before a restart; a worker that served "
                                                        "this long before dying is restarted after the shortest")

    token_ttl_s: int = _setting(7 * 24 * 3600, "lifetime of a session token")
    account_cache_ms: int = _setting(2000, "how long a node reuses an account it read (`grant` reaches nodes within)",
                                     low=0)
    account_cache_entries_max: int = _setting(100_000, "accounts remembered per node")
    db_pool_size_max: int = _setting(20, "PostgreSQL connections per node", high=10_000)
    shutdown_s_max: int = _setting(10, "how long a stopping node waits for busy database connections", low=0)
    redis_connections_max: int = _setting(64, "Redis connections per node (commands wait for a free one)")
    redis_wait_s_max: int = _setting(10, "how long a Redis command may wait for a free connection")
    unavailable_retry_after_s: int = _setting(2, "Retry-After of a 503 answered while PostgreSQL or Redis is "
                                                 "unreachable", low=1)

    ws_frame_bytes_max: int = _setting(4096, "largest inbound WebSocket frame answered with an error event")
    ws_frame_bytes_hard_max: int = _setting(65536, "inbound frame size above which the connection is closed")
    chat_chars_max: int = _setting(300, "longest chat message, in characters", high=100_000)
    chat_per_user_per_10s_max: int = _setting(10, "chat messages one user may send per 10 seconds")
    like_taps_per_user_per_s_max: int = _setting(20, "like taps one user may send per second")
    like_count_per_command_max: int = _setting(50, "largest `count` in one like command")
    connections_per_user_max: int = _setting(5, "simultaneous room WebSockets per user across all nodes")
    slow_mode_s_max: int = _setting(600, "longest slow-mode interval a moderator may set", low=0)
    blocked_words_max: int = _setting(200, "blocked words per room", low=0)
    timeout_s_max: int = _setting(7 * 24 * 3600, "longest chat timeout a moderator may give", low=0)
    chat_display_per_s_max: int = _setting(120, "chat messages per second a room shows; more are sampled")
    publish_queue_events_max: int = _setting(10000, "chat queued on a node for the bus; more is refused as busy")
    replay_events_max: int = _setting(1000, "room events kept for resume; older resumes get a reset")
    dedup_event_ids_max: int = _setting(10_000, "ids of outbox events a room remembers, so each is published once")
    snapshot_recent_chat_max: int = _setting(30, "chat messages included in a join snapshot")
    backlog_events_max: int = _setting(500, "must-deliver events queued for a slow connection before it is closed")
    write_buffer_bytes_high: int = _setting(256 * 1024, "socket write buffer above which a connection is slow")
    ws_unsent_bytes_max: int = _setting(16 * 1024, "bytes a room WebSocket may leave unsent in the kernel "
                                        "(TCP_NOTSENT_LOWAT); more wait in the node's buffer, where a slow "
                                        "consumer is seen (0: the kernel's default, unbounded)", low=0)
    tick_ms_min: int = _setting(20, "shortest gap between two flushes of a busy room (a quiet room flushes at once)")
    tick_ms_max: int = _setting(250, "longest gap between two flushes of a busy room (reached by big rooms, whose "
                                     "flushes cost the most; a must-deliver event does not wait for it)")
    tick_flush_cost_multiple: int = _setting(8, "a busy room's flush gap as a multiple of its last flush's cost")
    batch_writes_per_s_min: int = _setting(5000, "a room batches only when its event rate x its connections on a node "
                                           "process is above this (writes per second); below, every event goes "
                                           "out at once", low=0)
    batch_node_writes_per_s_min: int = _setting(30_000, "rooms batch only when a node process's rooms together would "
                                                "take more writes per second than this flushing every event alone "
                                                "(the sum of their event rates x connections); below, the node "
                                                "spends its CPU on sending every event at once", low=0)
    batch_frame_events: int = _setting(3, "a busy room's flush gap lets this many events fill a frame at its "
                                       "recent rate (up to tick_ms_max)", low=1)
    must_flush_gap_ms_min: int = _setting(250, "a must-deliver event skips a busy room's tick unless the room already "
                                          "sped up a flush this recently")
    like_flush_ms: int = _setting(500, "how often a node publishes aggregated likes")
    presence_refresh_ms: int = _setting(1000, "how often a node reports its viewer counts")
    presence_ttl_ms: int = _setting(5000, "a node's viewer counts expire this long after its last report")

    stripe_secret_key: str = _setting("", "Stripe secret API key; empty takes payments through the local test provider",
                                      check=_stripe_key_problem)
    stripe_api_base: str = _setting("", "Stripe API base URL (a Stripe-compatible server); empty is Stripe's own",
                                    check=lambda v: _url_problem(v, ("http", "https")))
    stripe_webhook_secrets: str = _setting("", "webhook signing secrets, comma-separated, newest first (rotation)",
                                           check=_webhook_secrets_problem)
    webhook_tolerance_s: int = _setting(300, "how far a webhook signature's timestamp may be from the node's clock")
    purchases_per_hour_max: int = _setting(10, "coin purchases one viewer may start per hour (velocity rule)", low=0)
    gift_coins_per_day_max: int = _setting(200_000, "coins one viewer may spend on gifts per UTC day", low=0)
    gift_count_per_send_max: int = _setting(99, "largest `count` in one gift request")
    gift_batch_max: int = _setting(32, "gifts committed together in one database round trip at most")
    gift_batch_workers: int = _setting(4, "gift batches committing at once per node")
    gift_queue_max: int = _setting(4000, "gifts waiting for a batch per node; more are refused with 503")
    event_relay_batch_max: int = _setting(256, "committed room events a node's outbox relay publishes per round")
    event_relay_poll_ms: int = _setting(500, "how often the relay looks for events when no commit woke it")
    event_relay_publish_ms_max: int = _setting(5000, "longest the relay waits for the bus to take a round's events")
    event_relay_lease_ms: int = _setting(10_000, "how long a relay's claim on events holds; then any relay may "
                                         "publish them again (it died mid-round)")
    event_relay_retry_ms_min: int = _setting(20, "first wait before the relay tries a refused publish again")
    event_relay_retry_ms_max: int = _setting(1000, "longest wait between the relay's tries while the bus is away")
    gift_combo_window_ms: int = _setting(3000, "repeats of a gift within this window count up one combo")
    gift_combo_hit_remembered_ms: int = _setting(60_000, "how long a gift's combo hit is remembered, so a relay "
                                                 "round tried again within it counts nothing twice")
    gift_combo_sweep_ms: int = _setting(250, "how often a node ends combos whose window has passed")
    gift_combo_sweep_batch_max: int = _setting(500, "combos ended per sweep at most")
    earnings_hold_s: int = _setting(7 * 24 * 3600, "how long gift earnings are held before they can be cashed out",
                                    low=0)
    payout_cents_min: int = _setting(1000, "smallest payout a creator may ask for, in cents", low=0)
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
    payment_methods_per_user_max: int = _setting(10, "saved payment methods per user")
    fulfilment_url: str = _setting("", "the fulfilment provider's API (the print-on-demand simulator's URL); empty "
                                       "starts the simulator beside the embedded servers",
                                   check=lambda v: _url_problem(v, ("http", "https")))
    fulfilment_api_key: str = _setting("", "the bearer key the fulfilment provider's API wants, if any")
    fulfilment_webhook_secret: str = _setting("", "the fulfilment provider's Standard Webhooks secret (whsec_...); "
                                                  "made and kept in the data dir for the embedded simulator",
                                              check=lambda v: _webhook_secrets_problem(v) if v else None)
    fulfilment_timeout_s: int = _setting(10, "how long a call to the fulfilment provider may take")
    fulfilment_sim_time_acceleration: int = _setting(3600, "the embedded simulator's simulated seconds per real "
                                                           "second (3600: an order ships in about a minute)")
    fulfilment_sim_failure_percent: int = _setting(0, "chance that the embedded simulator fails an order when "
                                                      "production starts", low=0, high=100)
    order_lines_max: int = _setting(20, "lines (product variants) in one order")
    order_quantity_max: int = _setting(10, "items of one variant in one order")
    orders_listed_max: int = _setting(50, "orders (and sales) listed per page")
    order_sweep_s: int = _setting(30, "how often a node places paid orders not yet with the fulfilment provider "
                                      "and sends refunds not yet sent")
    order_sweep_batch_max: int = _setting(100, "orders placed (and refunds sent) per sweep at most")
    order_card_answer_wait_s: int = _setting(300, "how long a saved-card payment of an order without a recorded "
                                                  "answer (its node died mid-call) blocks another attempt")
    auction_payment_window_s: int = _setting(120, "how long an auction winner (or the bidder offered the lot next) "
                                                  "has to complete a payment that needs their action or to accept")
    auction_second_chance_max: int = _setting(5, "bidders offered a won lot after its winner, one after another")
    auction_payment_sweep_ms: int = _setting(1000, "how often a node charges new auction winners and passes "
                                                   "unpaid lots on")

    media_viewers_per_room_max: int = _setting(200, "WebRTC viewers of one room, on all nodes together; more get "
                                                      "503 + HLS")
    media_viewers_per_node_max: int = _setting(500, "WebRTC viewers on this node; more get 503 + HLS")
    media_keyframe_interval_ms: int = _setting(1000, "shortest interval between keyframe requests to a publisher")
    media_history_packets: int = _setting(512, "RTP packets kept per track to answer NACKs (a power of two)",
                                          high=32768, check=_power_of_two_problem)
    media_gop_cache_packets_max: int = _setting(2048, "RTP packets of a video track's current group of pictures "
                                                      "kept to start a joining viewer at once (0: joiners wait for "
                                                      "the next keyframe)", low=0)
    media_gop_cache_bytes_max: int = _setting(2 * 1024 * 1024, "payload bytes of a video track's current group of "
                                                               "pictures kept for joiners; a longer group is not "
                                                               "cached", low=0)
    media_ingest_timeout_ms: int = _setting(5000, "a publisher silent this long ends the stream")
    media_owner_ttl_ms: int = _setting(5000, "a media node's room ownership expires this long after its last refresh")
    media_relay_idle_ms: int = _setting(10000, "a relay from another node without viewers closes after this long")
    node_request_timeout_ms: int = _setting(5000, "how long a node waits for another node's answer to a relay offer "
                                                  "or a passed-on WHIP/WHEP session request (then 502)")
    node_answer_bytes_max: int = _setting(16 * 1024 * 1024, "largest answer a node takes from another for a request "
                                                            "passed on to it (HLS segments are the largest)")
    media_publish_grace_ms: int = _setting(10000, "a live stream whose publisher left stays live this long for it to "
                                                   "come back (any node), then ends")
    stream_unpublished_ms_max: int = _setting(120000, "a stream nobody starts publishing within this long ends")
    stream_sweep_batch_max: int = _setting(100, "overdue streams one node ends per sweep (a sweep runs every second)")
    media_ice_servers: str = _setting("", "STUN/TURN URLs offered to WHIP/WHEP clients (Link headers) and used by "
                                          "this node's own peers, comma-separated")
    media_ice_username: str = _setting("", "the username WHIP/WHEP clients use with the TURN servers above")
    media_ice_credential: str = _setting("", "the credential WHIP/WHEP clients use with the TURN servers above")
    media_ice_transport_policy: str = _setting("all", "all: this node's peers offer their host candidates and the "
                                                      "servers' above; relay: only TURN relayed ones (a node no "
                                                      "client may reach directly)",
                                               check=lambda v: _choice_problem(v, ("all", "relay")))
    ingest_cors_origins: str = _setting("*", "origins whose pages may publish over WHIP, comma-separated; * any "
                                             "(the stream key is the credential)")
    playback_cors_origins: str = _setting("*", "origins whose pages may play over WHEP and HLS, comma-separated; "
                                               "* any")
    api_cors_origins: str = _setting("", "origins whose pages may call the rest of the API (with cookies), "
                                         "comma-separated; empty: the node's own pages only")
    cors_max_age_s: int = _setting(600, "how long a browser may reuse a CORS preflight answer")
    hls_segment_ms: int = _setting(2000, "target HLS segment duration")
    hls_playlist_wait_ms_max: int = _setting(8000, "a request for a playlist not written yet waits this long for the "
                                                   "stream's first segment before 404")
    hls_cache_bytes_max: int = _setting(64 * 1024 * 1024, "bytes of HLS files of streams other nodes own kept in "
                                                          "memory on this node (fetched once from the owner)",
                                        low=0)
    hls_window_segments: int = _setting(6, "HLS segments listed in the playlist and kept on disk per stream")
    recording_enabled: bool = _setting(True, "record each stream to an MP4 in the data dir")
    thumbnail_interval_ms: int = _setting(10000, "how often a live stream's thumbnail JPEG is refreshed")
    video_bytes_max: int = _setting(200 * 1024 * 1024, "largest video upload, in bytes")
    video_duration_ms_max: int = _setting(10 * 60 * 1000, "longest video accepted (uploads and recordings)")
    video_edge_px_max: int = _setting(1920, "a video's longer side; larger ones are scaled down when transcoded")
    video_cache_bytes_max: int = _setting(2 * 1024 * 1024 * 1024, "bytes of other nodes' video files (MP4s, "
                                                                  "thumbnails) kept on this node's disk, fetched "
                                                                  "once from the node that holds them", low=0)
    video_fetches_max: int = _setting(4, "other nodes' video files a node fetches at once (more wait)", low=1)
    media_cache_bytes_max: int = _setting(2 * 1024 * 1024 * 1024, "bytes of other nodes' ended streams' files "
                                                                  "(recordings, thumbnails, HLS) kept on this "
                                                                  "node's disk, fetched once from the node that "
                                                                  "made them", low=0)
    media_fetches_max: int = _setting(4, "other nodes' ended streams' files a node fetches at once (more wait)",
                                      low=1)
    video_workers: int = _setting(1, "videos checked and transcoded at once per node (threads)")
    video_queue_max: int = _setting(16, "videos waiting for a worker per node; past this an upload is 503")
    video_hashtags_max: int = _setting(20, "hashtags on one video")
    edit_render_processes: int = _setting(CORES, "edits rendered at once per node, each in its own process (at "
                                                 "most one per core)", high=CORES, default_text="the cores")
    edit_queue_max: int = _setting(64, "edits waiting to be rendered (all nodes); past this POST /api/edits is 503")
    edit_render_attempts_max: int = _setting(3, "renders of one edit before it fails (a render whose process "
                                                "died is tried again)")
    edit_claim_idle_ms: int = _setting(60_000, "a queued render no node has touched for this long (its node died) "
                                               "is claimed by another (XAUTOCLAIM)")
    edit_claim_interval_ms: int = _setting(5_000, "how often a node looks for such renders")
    edit_progress_interval_ms: int = _setting(500, "how often a render's progress is stored and published")
    edit_clips_max: int = _setting(20, "clips in one edit")
    edit_overlays_max: int = _setting(20, "texts and stickers in one edit")
    edit_duration_ms_max: int = _setting(180_000, "longest edit")
    edit_stitch_ms_max: int = _setting(5_000, "longest span of another creator's video an edit may stitch")
    edit_crossfade_ms_max: int = _setting(2_000, "longest crossfade between two clips")
    edit_clip_bytes_max: int = _setting(100 * 1024 * 1024, "largest clip upload, in bytes")
    edit_clip_duration_ms_max: int = _setting(10 * 60 * 1000, "longest clip upload")
    edit_clip_edge_px_max: int = _setting(3840, "a clip upload's longer side")
    edit_sticker_bytes_max: int = _setting(2 * 1024 * 1024, "largest sticker upload (PNG), in bytes")
    edit_sticker_edge_px_max: int = _setting(1280, "a sticker's longer side")
    recording_video_window_s: int = _setting(86400, "a stream that ended this long ago or less still has its "
                                                    "recording posted as a video")
    recording_video_sweep_ms: int = _setting(2000, "how often ended streams' recordings are looked for")
    sound_bytes_max: int = _setting(20 * 1024 * 1024, "largest sound upload, in bytes")
    sound_duration_ms_min: int = _setting(1000, "shortest sound accepted")
    sound_duration_ms_max: int = _setting(5 * 60 * 1000, "longest sound accepted (it is cut nowhere: longer is "
                                                         "refused)")
    sound_cache_bytes_max: int = _setting(1024 * 1024 * 1024, "bytes of sounds' audio files a node keeps on its disk "
                                                              "(read from PostgreSQL when missing)", low=0)
    sound_checks_max: int = _setting(2, "sound uploads checked and transcoded at once per node; past this an "
                                        "upload is 503")
    sound_sweep_ms: int = _setting(30_000, "how often ready videos whose use of a sound was not counted (their node "
                                           "stopped, the database was away) are counted, and audio files an "
                                           "interrupted upload left without a record are removed")
    sound_page_videos_max: int = _setting(50, "videos listed on one page of a sound or challenge (the limit "
                                              "parameter's greatest value)")
    challenge_trending_hours: int = _setting(24, "engagement this recent makes a challenge trend")
    challenge_trending_max: int = _setting(5, "trending challenges whose best videos are For You candidates")
    challenge_trending_videos_max: int = _setting(10, "videos of each trending challenge offered as For You "
                                                      "candidates")
    challenge_trending_refresh_ms: int = _setting(10_000, "how often the trending challenges are ranked again")
    challenge_template_bytes_max: int = _setting(16 * 1024, "largest challenge template (JSON), in bytes")
    engagement_events_per_batch_max: int = _setting(100, "events in one POST /api/engagements")
    engagement_stream_entries_max: int = _setting(200_000, "engagement events kept in the Redis stream the "
                                                           "online learner reads (approximate trim)")
    timeline_entries_max: int = _setting(500, "videos kept in one viewer's Following timeline in Redis")
    timeline_ttl_s: int = _setting(7 * 86400, "an unread Following timeline is dropped after this (rebuilt from "
                                              "PostgreSQL when next read)")
    fanout_followers_max: int = _setting(5000, "authors with more followers than this are merged into timelines "
                                               "at read time instead of written into each one")
    fanout_batch_max: int = _setting(1000, "timelines written per Redis round trip when a video fans out")
    feed_page_items_max: int = _setting(50, "items in one feed page (the limit parameter's greatest value)")
    feed_live_cache_ms: int = _setting(1000, "how long a node reuses the list of live streams its feeds show as "
                                             "cards", low=0)
    feed_session_seen_max: int = _setting(5000, "videos remembered as seen in one For You session")
    feed_session_ttl_s: int = _setting(6 * 3600, "a For You session (its seen set) lasts this long after its last "
                                                 "page")
    foryou_candidates_max: int = _setting(400, "candidates ranked for one For You page")
    foryou_catalogue_videos_max: int = _setting(100_000, "newest ready videos each node keeps in memory for For You")
    foryou_exploration_percent: int = _setting(20, "share of each For You page kept for fresh videos", low=0,
                                               high=100)
    foryou_fresh_hours: int = _setting(48, "a video this young or younger counts as fresh for exploration")
    foryou_author_items_per_page_max: int = _setting(1, "videos of one author in one For You page")
    foryou_trending_hours: int = _setting(72, "engagement this recent makes a video trend in its viewers' region")
    foryou_refresh_ms: int = _setting(2000, "how often the catalogue, trending lists and co-engagement model are "
                                            "brought up to date (the learner reads engagement continuously)")
    coengagement_train_interval_s: int = _setting(300, "how often the co-engagement model is retrained")
    coengagement_events_max: int = _setting(500_000, "positive engagements the co-engagement model trains on")
    learner_feature_buckets: int = _setting(1 << 20, "hashed feature slots of the online ranker (bounds its memory)",
                                            check=_power_of_two_problem)
    marketplace_followers_min: int = _setting(1000, "followers a creator needs to be listed in the creator "
                                                    "marketplace", low=0)
    marketplace_recent_videos_min: int = _setting(3, "ready videos in the recent window a creator needs to be "
                                                     "listed in the marketplace", low=0)
    marketplace_recent_days: int = _setting(90, "videos this young or younger count as recent on a creator card")
    marketplace_recent_videos_max: int = _setting(30, "newest recent videos a creator card's median views and "
                                                      "engagement rate are taken over")
    marketplace_growth_days: int = _setting(30, "the window of a creator card's follower growth")
    marketplace_group_size_min: int = _setting(50, "followers an audience group (age band, region, interest) needs "
                                                   "to be shown on a creator card; smaller groups are merged into "
                                                   "\"other\" or left out (k-anonymity)", low=2)
    marketplace_card_refresh_s: int = _setting(3600, "a creator card older than this is computed again by the "
                                                     "background job")
    marketplace_card_refresh_batch_max: int = _setting(200, "creator cards computed in one round of the background "
                                                            "job")
    marketplace_page_items_max: int = _setting(50, "creators in one marketplace search page (the limit "
                                                   "parameter's greatest value)")
    marketplace_search_candidates_max: int = _setting(2000, "creators matching a search's audience filters that it "
                                                            "reads by id, rather than walking its sort order")
    marketplace_fee_percent: int = _setting(10, "the platform's share of an offer's price when it is paid to the "
                                                "creator", low=0, high=100)
    offer_price_cents_max: int = _setting(10_000_000, "the highest price of one marketplace offer, in cents")
    offer_brief_chars_max: int = _setting(4000, "characters in an offer's brief")
    offer_expire_after_days: int = _setting(3, "an offer not delivered this many days after its due date expires: "
                                               "the escrow of an accepted one goes back to the advertiser", low=0)
    offer_expiry_sweep_s: int = _setting(60, "how often a node looks for offers to expire")

    ads_feed_items_per_ad: int = _setting(5, "the For You ad load: at most one ad per this many items, never first "
                                             "on a page and never two in a row; 0 shows no ads", low=0)
    ads_reserve_ecpm_cents: int = _setting(50, "the auction's reserve price: least expected value per thousand "
                                               "impressions, in cents", low=0)
    ads_ctr_prior_permille: int = _setting(10, "predicted click rate of an ad group with no history, per mille",
                                           high=1000)
    ads_ctr_prior_impressions: int = _setting(200, "impressions the prior click rate weighs as, against measured ones")
    ads_pacing_lookahead_permille: int = _setting(10, "how far (per mille of a day's schedule) the pacing target "
                                                      "runs ahead of the clock", low=0, high=1000)
    ads_pacing_hour_share_max_percent: int = _setting(130, "even and front-loaded pacing: an hour spends at most "
                                                           "this share of its part of the day budget", low=100)
    ads_frequency_per_day_default: int = _setting(3, "times one ad group is shown to one viewer per UTC day, "
                                                     "unless the ad group says otherwise")
    ads_refresh_ms: int = _setting(1000, "how often a node reads the running campaigns and their spend into memory")
    ads_campaigns_in_memory_max: int = _setting(10_000, "running campaigns each node holds for ad decisions")
    ads_refresh_rows_per_turn_max: int = _setting(300, "rows (campaigns, ad groups, creatives) a refresh builds, and "
                                                       "ad groups it ranks, before it lets the event loop run "
                                                       "decisions again", low=1)
    ads_refresh_full_ms: int = _setting(60_000, "every running campaign is read whole again (with its videos) at "
                                                "least this often, a share of them at each refresh, besides what "
                                                "changed", low=1)
    ads_impression_ttl_s: int = _setting(24 * 3600, "events of an impression are counted for this long after it "
                                                    "was served")
    ads_events_per_batch_max: int = _setting(100, "ad events in one POST /api/ads/events")
    ads_events_pending_max: int = _setting(20_000, "ad events waiting on a node to be stored; past it a batch is "
                                           "refused with 503 ads-events-busy (the page sends it again)")
    ads_events_per_write_max: int = _setting(2000, "ad events of many requests stored in one transaction at most")
    ads_spend_post_ms: int = _setting(2000, "how often a node posts campaigns' unposted charges to the ledger")
    ads_spend_batch_max: int = _setting(5000, "charges posted to the ledger in one transaction at most")
    ads_settle_sweep_ms: int = _setting(10_000, "how often a node looks for ended campaigns to settle (their unspent "
                                                "budget given back)")
    ads_settle_after_s: int = _setting(600, "a campaign whose schedule ended is settled this long after its end "
                                            "(events of impressions served before it are charged until then)", low=0)
    ads_campaigns_listed_max: int = _setting(100, "campaigns listed in GET /api/campaigns")

    def __post_init__(self) -> None:
        if not self.node_id:
            object.__setattr__(self, "node_id", f"{self.host}-{self.port}")
        if not self.public_url:
            object.__setattr__(self, "public_url", _http_url(self.host, self.port))
        if not self.internal_url:
            object.__setattr__(self, "internal_url", _http_url(_reachable_host(self.host), self.port))
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.demo is None:
            # Decided once, before `serve` fills in the embedded database's URL: a fresh `make run` shows a live
            # demo, a node on an operator's database does not unless asked.
            object.__setattr__(self, "demo", not self.database_url and self.seed_demo)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


WILDCARD_HOSTS = ("", "0.0.0.0", "::")


def _http_url(host: str, port: int) -> str:
    return f"http://{'[' + host + ']' if ':' in host else host}:{port}"


def _reachable_host(host: str) -> str:
    """An address other machines reach a node listening on `host` at: the host itself, or for a wildcard this
    machine's first address besides loopback (the one aiortc offers first as an ICE candidate)."""
    if host not in WILDCARD_HOSTS:
        return host
    import aioice.ice  # only for a wildcard host: `--help` and most settings never need it

    addresses = aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=host == "::")
    return addresses[0] if addresses else "127.0.0.1"


def parse_value(kind: Any, raw: str) -> Any:
    """Turn a flag or environment string into the field's type, or raise ValueError naming the problem."""
    if kind in (bool, "bool", "bool | None"):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("not a boolean (true/false, yes/no, on/off, 1/0)")
    if kind in (int, "int"):
        try:
            return int(raw)
        except ValueError:
            raise ValueError("not a whole number") from None
    if kind in (Path, "Path"):
        return Path(raw)
    return raw


FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def settings_from_env(environ: dict[str, str] | None = None, flags: dict[str, str | None] | None = None,
                      **overrides: Any) -> Settings:
    """Settings from `LIVECORE_*` variables, then CLI flags (raw strings), then typed overrides (tests).

    Raises StartupError (exit 2) naming the variable or flag for an unknown `LIVECORE_*` variable, a value that
    does not parse, or one out of its range.
    """
    environ = dict(os.environ) if environ is None else environ
    _refuse_unknown(environ)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    raw_inputs = [(env_name(name), name, environ.get(env_name(name))) for name in FIELDS]
    raw_inputs += [(flag_name(name), name, raw) for name, raw in (flags or {}).items()]
    for label, name, raw in raw_inputs:
        if raw is None or raw == "":
            continue
        try:
            values[name] = parse_value(FIELDS[name].type, raw)
        except ValueError as exc:
            raise StartupError(ExitCode.SETTING, str(exc), "fix the value", setting=name,
                               value=raw, label=label) from None
        sources[name] = label
    for name, value in overrides.items():
        if value is not None:
            values[name] = value
            sources[name] = flag_name(name)
    settings = Settings(**values)
    check_settings(settings, sources)
    return settings


def _refuse_unknown(environ: dict[str, str]) -> None:
    known = {env_name(name) for name in FIELDS}
    for variable in sorted(environ):
        if variable.startswith("LIVECORE_") and variable not in known:
            close = difflib.get_close_matches(variable, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise StartupError(ExitCode.SETTING, f"not a livecore setting{hint}",
                               "fix its name or unset it (`livecore serve --help` lists every setting)",
                               label=variable)  # its value is not shown: it may be a secret under a wrong name


def check_settings(settings: Settings, sources: dict[str, str] | None = None) -> None:
    """Raise StartupError (exit 2) for the first value out of its range or otherwise unacceptable."""
    sources = sources or {}
    for name, f in FIELDS.items():
        value = getattr(settings, name)
        problem = _field_problem(f, value)
        if problem:
            remedy = "set a value in that range" if problem.startswith("out of range") else "fix the value"
            raise StartupError(ExitCode.SETTING, problem, remedy, setting=name, value=value, label=sources.get(name))
    for names, problem in _cross_problems(settings):
        name = next((n for n in names if n in sources), names[0])
        raise StartupError(ExitCode.SETTING, problem, "change one of them", setting=name,
                           value=getattr(settings, name), label=sources.get(name))


def _field_problem(f: dataclasses.Field[Any], value: Any) -> str | None:
    meta = f.metadata
    if f.type in (int, "int"):
        low = INT_LOW_DEFAULT if meta["low"] is None else meta["low"]
        high = meta["high"]
        if value < low or (high is not None and value > high):
            return f"out of range ({low} to {high})" if high is not None else f"out of range (at least {low})"
    check = meta["check"]
    return check(value) if check else None


def _cross_problems(s: Settings) -> list[tuple[tuple[str, ...], str]]:
    """Settings that are each in range but wrong together."""
    rules = [
        (("ws_frame_bytes_max", "ws_frame_bytes_hard_max"), s.ws_frame_bytes_max <= s.ws_frame_bytes_hard_max,
         f"ws_frame_bytes_max ({s.ws_frame_bytes_max}) is above ws_frame_bytes_hard_max ({s.ws_frame_bytes_hard_max})"),
        (("tick_ms_min", "tick_ms_max"), s.tick_ms_min <= s.tick_ms_max,
         f"tick_ms_min ({s.tick_ms_min}) is above tick_ms_max ({s.tick_ms_max})"),
        (("presence_refresh_ms", "presence_ttl_ms"), s.presence_refresh_ms < s.presence_ttl_ms,
         f"presence_refresh_ms ({s.presence_refresh_ms}) must be below presence_ttl_ms ({s.presence_ttl_ms}), "
         "or live nodes' viewers expire between reports"),
        (("worker_restart_delay_ms_min", "worker_restart_delay_ms_max"),
         s.worker_restart_delay_ms_min <= s.worker_restart_delay_ms_max,
         f"worker_restart_delay_ms_min ({s.worker_restart_delay_ms_min}) is above worker_restart_delay_ms_max "
         f"({s.worker_restart_delay_ms_max})"),
        (("demo", "seed_demo"), not (s.demo and not s.seed_demo),
         "the demo logs in as the seeded demo accounts: demo needs seed_demo"),
    ]
    return [(names, problem) for names, ok, problem in rules if not ok]
