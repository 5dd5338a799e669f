// Live auctions without the DOM: folding a room's `auction` events into one lot by version, the server's clock as
// the browser can know it, the countdown, and the amounts of the next bids. Pure, so the watch page and the studio
// share it and tests/browser/test_auction_fold.py checks it against real events.

// What every auction event carries of the lot's changing state (commerce/auctions/events.py).
export const CHANGING = ["version", "state", "price_cents", "leader", "ends_at", "bids_count", "min_next_cents",
  "buy_now_available", "winner", "closed_by"];
// The latest bids a page keeps per lot (the server's join snapshot keeps 50: auction_snapshot_bids_max).
export const BIDS_KEPT_MAX = 50;
// Clock samples: only recent ones count, so a server clock that was stepped is followed within a minute.
export const CLOCK_SAMPLES_MAX = 32;
export const CLOCK_SAMPLE_AGE_MS_MAX = 60_000;
// Seconds left at which the countdown is announced to screen readers (the visible timer is not a live region).
export const ANNOUNCE_AT_S = [300, 120, 60, 30, 10, 5];

const NOT_TERMS = new Set([...CHANGING, "bids", "server_now", "order_id", "auction_id", "type", "action", "seq",
  "ts"]);

function termsOf(view) {
  return Object.fromEntries(Object.entries(view).filter(([key]) => !NOT_TERMS.has(key)));
}

/**
 * Fold one auction into `lot` (null when the page has none) and return the lot to show. `item` is a room event
 * (`auction_id`, `opened` adds the terms in `auction`), a bid answer's `auction`, or a whole view (`id`, from a join
 * snapshot or GET /api/auctions/{id}). Order-free: the highest version wins, bids merge by their number, a newer
 * auction replaces an older one and an older one's late events are ignored; `terms` stay null until an `opened`
 * event or a view brings them.
 */
export function foldLot(lot, item) {
  const id = item.auction_id ?? item.id;
  if (lot && id < lot.id) return lot;
  const current = lot && lot.id === id ? lot : { id, terms: null, state: null, bids: new Map() };
  const terms = item.auction ?? (item.auction_id === undefined ? termsOf(item) : null);
  if (terms && !current.terms) current.terms = terms;
  if (!current.state || item.version > current.state.version) {
    current.state = Object.fromEntries(CHANGING.map((key) => [key, item[key] ?? null]));
  }
  for (const entry of item.bids ?? []) current.bids.set(entry.seq, entry);
  if (current.bids.size > BIDS_KEPT_MAX) {
    const seqs = [...current.bids.keys()].sort((a, b) => a - b);
    for (const seq of seqs.slice(0, current.bids.size - BIDS_KEPT_MAX)) current.bids.delete(seq);
  }
  return current;
}

/** The lot's kept bids, oldest first. */
export function history(lot) {
  return [...lot.bids.keys()].sort((a, b) => a - b).map((seq) => lot.bids.get(seq));
}

/** The pinned product after a `product_pinned` event or a snapshot's `{pinned, pin_version}`: the newest pin wins. */
export function foldPin(pin, product, version) {
  return pin && pin.version >= version ? pin : { product, version };
}

/**
 * The server's clock as seen from here. Each sample is a server timestamp and the local monotonic time it arrived
 * at; it lags the server by the delivery delay, so the least delayed recent sample (the largest offset) is the best
 * estimate. A replayed event's old `ts` therefore never drags the clock back, and the browser's own wall clock,
 * which may be wrong by hours, is never read.
 */
export class ServerClock {
  constructor(now = () => performance.now()) {
    this.localNow = now;
    this.samples = []; // [localMs, offsetMs]
  }

  /** A server time in ms; `sentAt` (local ms when the request left) makes the sample a round-trip midpoint. */
  sample(serverMs, sentAt = null) {
    if (typeof serverMs !== "number") return;
    const arrived = this.localNow();
    const local = sentAt === null ? arrived : (sentAt + arrived) / 2;
    this.samples.push([arrived, serverMs - local]);
    if (this.samples.length > CLOCK_SAMPLES_MAX) this.samples.shift();
  }

  get known() {
    return this.samples.length > 0;
  }

  /** The server's time now, in ms (null before the first sample). */
  now() {
    const localMs = this.localNow();
    const recent = this.samples.filter(([at]) => localMs - at <= CLOCK_SAMPLE_AGE_MS_MAX);
    const kept = recent.length ? recent : this.samples.slice(-1);
    if (!kept.length) return null;
    return localMs + Math.max(...kept.map(([, offset]) => offset));
  }
}

/** Milliseconds left before the lot ends, never negative; null when the server's time is not known yet. */
export function remainingMs(lot, serverNow) {
  if (serverNow === null || !lot.state || lot.state.ends_at === null) return null;
  return Math.max(0, lot.state.ends_at - serverNow);
}

/** "m:ss" (or "h:mm:ss") rounded up to the second, so 0:00 shows only at the end. */
export function formatRemaining(ms) {
  const total = Math.ceil(ms / 1000);
  const s = String(total % 60).padStart(2, "0");
  const minutes = Math.floor(total / 60);
  if (minutes < 60) return `${minutes}:${s}`;
  return `${Math.floor(minutes / 60)}:${String(minutes % 60).padStart(2, "0")}:${s}`;
}

/** The announcement threshold (seconds) passed between two readings of the time left, or null. */
export function thresholdCrossed(previousMs, currentMs) {
  if (previousMs === null || currentMs === null) return null;
  const before = Math.ceil(previousMs / 1000);
  const now = Math.ceil(currentMs / 1000);
  const crossed = ANNOUNCE_AT_S.filter((s) => before > s && now <= s && now > 0);
  return crossed.length ? Math.min(...crossed) : null;
}

/** The increment the table asks for above `cents` ([[from_cents, step_cents], ...], ascending from 0). */
export function stepAt(steps, cents) {
  let step = steps[0][1];
  for (const [from, size] of steps) if (from <= cents) step = size;
  return step;
}

/** The amounts of the next `count` bids a challenger could place: the minimum, then one increment above each. */
export function nextBids(lot, count = 3) {
  if (!lot.state || lot.state.state !== "open" || !lot.terms) return [];
  const amounts = [lot.state.min_next_cents];
  while (amounts.length < count) {
    const last = amounts.at(-1);
    amounts.push(last + stepAt(lot.terms.increments.steps, last));
  }
  return amounts;
}

/**
 * Where the viewer `youId` stands: "seller", "leading", "outbid" (bid here or seen in the history, not leading),
 * "won", "lost" or "watching" (never bid), or "closed" (for the seller, nobody's standing).
 */
export function standing(lot, youId, { bidHere = false } = {}) {
  const state = lot.state;
  if (!state || youId === null) return "watching";
  if (lot.terms && lot.terms.seller && lot.terms.seller.id === youId) return "seller";
  const bid = bidHere || [...lot.bids.values()].some((entry) => entry.bidder && entry.bidder.id === youId);
  if (state.state === "closed") {
    if (state.winner && state.winner.id === youId) return "won";
    return bid ? "lost" : "watching";
  }
  if (state.leader && state.leader.id === youId) return "leading";
  return bid ? "outbid" : "watching";
}
