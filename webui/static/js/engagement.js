// Engagement events from the feed page, sent in batches to POST /api/engagements. Each event has its own id, so a
// batch sent twice (a retry after a lost answer) counts once.

import { api } from "./api.js";

const FLUSH_MS = 3000;
const BATCH_MAX = 50;

export class Engagement {
  constructor() {
    this.queue = [];
    this.timer = null;
    addEventListener("pagehide", () => this.flushOnExit());
  }

  /** Queue one event: {video_id, kind, watch_ms?}; sent within FLUSH_MS, or now when `now` is set. */
  record(videoId, kind, extra = {}, now = false) {
    this.queue.push({ id: crypto.randomUUID(), video_id: videoId, kind, ...extra });
    if (now || this.queue.length >= BATCH_MAX) return this.flush();
    this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
    return Promise.resolve();
  }

  async flush() {
    clearTimeout(this.timer);
    this.timer = null;
    const batch = this.queue.splice(0, BATCH_MAX);
    if (!batch.length) return;
    try {
      await api("/api/engagements", { method: "POST", body: { events: batch } });
    } catch (error) {
      if (error.status === 0 || error.status >= 500) this.queue.unshift(...batch); // sent again with the same ids
    }
  }

  flushOnExit() {
    if (!this.queue.length) return;
    const body = JSON.stringify({ events: this.queue.splice(0, BATCH_MAX) });
    navigator.sendBeacon("/api/engagements", new Blob([body], { type: "application/json" }));
  }
}
