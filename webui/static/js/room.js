// The room WebSocket client: connection, resume from (epoch, seq), reconnect policy and like aggregation.
// It knows the wire format (signaling/protocol.py) but nothing about the DOM, so the watch page and a future
// studio page share it.

export const SUBPROTOCOL = "livecore.json";
export const CLOSE_UNAUTHORIZED = 4001;
export const CLOSE_BANNED = 4003;
export const CLOSE_SLOW_CONSUMER = 4008;
export const CLOSE_TOO_MANY_CONNECTIONS = 4029;

// Server defaults: like_count_per_command_max is 50; a larger count would be answered with an error.
export const LIKE_FLUSH_MS = 250;
export const LIKE_COUNT_PER_COMMAND_MAX = 50;
// Browsers cannot send WebSocket pings, so an application ping keeps idle proxies from dropping the socket.
export const PING_INTERVAL_MS = 30_000;
export const BACKOFF_BASE_MS = 500;
export const BACKOFF_MAX_MS = 30_000;
// A connection that stayed open this long counts as healthy even if the room was quiet, so its drop
// starts the backoff over instead of continuing a long series.
export const STABLE_MS = 10_000;

/** Delay before reconnect attempt `attempt` (0-based): exponential, capped, with "equal jitter" to spread a herd. */
export function backoffDelayMs(attempt, random = Math.random) {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 16));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** The WebSocket URL for a room, resuming after `position` when one is known. */
export function roomUrl(roomId, position, base = location) {
  const scheme = base.protocol === "https:" ? "wss:" : "ws:";
  let url = `${scheme}//${base.host}/ws/rooms/${encodeURIComponent(roomId)}`;
  if (position && position.epoch !== null) {
    url += `?since=${encodeURIComponent(`${position.epoch}:${position.seq}`)}`;
  }
  return url;
}

/**
 * One room connection that keeps itself alive.
 *
 * `onEvent(event)` sees every server event in order, `onStatus(state, info)` sees the connection state:
 * "connecting", "open", "reconnecting" ({delayMs, code}), "banned", "unauthorized" or "closed".
 */
export class RoomClient {
  constructor(roomId, { onEvent = () => {}, onStatus = () => {}, WebSocketImpl = WebSocket, random = Math.random,
    now = () => Date.now(), setTimer = (callback, delayMs) => setTimeout(callback, delayMs),
    clearTimer = (id) => clearTimeout(id), base = location } = {}) {
    this.roomId = roomId;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.WebSocketImpl = WebSocketImpl;
    this.random = random;
    this.now = now;
    this.setTimer = setTimer;
    this.clearTimer = clearTimer;
    this.base = base;
    this.position = { epoch: null, seq: 0 };
    this.socket = null;
    this.attempt = 0;
    this.stopped = false;
    this.reconnectTimer = null;
    this.pingTimer = null;
    this.pendingLikes = 0;
    this.likeTimer = null;
    this.lastLikeSentAt = -Infinity;
  }

  get isOpen() {
    return this.socket !== null && this.socket.readyState === 1;
  }

  connect() {
    this.stopped = false;
    this.clearTimer(this.reconnectTimer);
    this.reconnectTimer = null;
    this.onStatus("connecting", {});
    const socket = new this.WebSocketImpl(roomUrl(this.roomId, this.position, this.base), SUBPROTOCOL);
    this.socket = socket;
    // A resume answers with only the missed events (maybe none), so a snapshot is not the only sign of health.
    let joined = false;
    let openedAtMs = null;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      openedAtMs = this.now();
      this.onStatus("open", {});
      this.schedulePing();
      this.flushLikes();
    };
    socket.onmessage = (message) => {
      if (this.socket !== socket) return;
      for (const event of parseFrame(message.data)) {
        if (event.type === "snapshot" || typeof event.seq === "number") joined = true;
        this.track(event);
        this.onEvent(event);
      }
    };
    socket.onclose = (close) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.clearTimer(this.pingTimer);
      const stable = joined || (openedAtMs !== null && this.now() - openedAtMs >= STABLE_MS);
      if (stable) this.attempt = 0;
      if (!this.stopped) this.afterClose(close.code, stable);
    };
  }

  /** Stop for good: no reconnects, pending likes dropped. */
  close() {
    this.stopped = true;
    this.clearTimer(this.reconnectTimer);
    this.clearTimer(this.pingTimer);
    this.clearTimer(this.likeTimer);
    this.likeTimer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close(1000, "leaving");
    this.onStatus("closed", {});
  }

  /** Send one command; false when the socket is not open, so the caller can keep the user's input. */
  send(command) {
    if (!this.isOpen) return false;
    this.socket.send(JSON.stringify(command));
    return true;
  }

  /** Count `taps` like taps; they go out as one aggregated like command at most every LIKE_FLUSH_MS. */
  like(taps = 1) {
    this.pendingLikes += taps;
    this.flushLikes();
  }

  /** Reconnect now (e.g. the browser came back online) instead of waiting out the backoff. */
  reconnectNow() {
    if (this.stopped || this.socket !== null) return;
    this.connect();
  }

  track(event) {
    if (event.type === "snapshot" || event.type === "reset") {
      if (event.epoch !== this.position.epoch) this.position = { epoch: event.epoch, seq: event.seq ?? 0 };
    }
    if (typeof event.seq === "number" && event.seq > this.position.seq) this.position.seq = event.seq;
  }

  afterClose(code, stable) {
    if (code === CLOSE_BANNED) {
      this.stopped = true;
      this.onStatus("banned", { code });
      return;
    }
    if (code === CLOSE_UNAUTHORIZED) {
      this.stopped = true;
      this.onStatus("unauthorized", { code });
      return;
    }
    // A slow consumer that was receiving fine only needs to resume; waiting would make it miss more.
    const delayMs = code === CLOSE_SLOW_CONSUMER && stable ? 0 : backoffDelayMs(this.attempt++, this.random);
    this.onStatus("reconnecting", { delayMs, code });
    this.reconnectTimer = this.setTimer(() => {
      this.reconnectTimer = null;
      if (!this.stopped) this.connect();
    }, delayMs);
  }

  schedulePing() {
    this.clearTimer(this.pingTimer);
    this.pingTimer = this.setTimer(() => {
      if (this.send({ type: "ping" })) this.schedulePing();
    }, PING_INTERVAL_MS);
  }

  flushLikes() {
    if (this.likeTimer !== null || this.pendingLikes === 0 || !this.isOpen) return;
    const waitMs = this.lastLikeSentAt + LIKE_FLUSH_MS - this.now();
    if (waitMs > 0) {
      this.likeTimer = this.setTimer(() => {
        this.likeTimer = null;
        this.flushLikes();
      }, waitMs);
      return;
    }
    const count = Math.min(this.pendingLikes, LIKE_COUNT_PER_COMMAND_MAX);
    if (this.send({ type: "like", count })) {
      this.pendingLikes -= count;
      this.lastLikeSentAt = this.now();
      if (this.pendingLikes > 0) this.flushLikes();
    }
  }
}

function parseFrame(data) {
  try {
    const parsed = JSON.parse(data);
    return Array.isArray(parsed) ? parsed : [parsed];
  } catch {
    return [];
  }
}
