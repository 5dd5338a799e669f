// Ad measurement from the feed page, sent in batches to POST /api/ads/events. An event's id is its impression's id
// and kind, so a retry or a second showing of the same ad item counts once.
//
// - impression: the ad card became the one on screen
// - viewable: at least half of its player was in view for at least VIEWABLE_MS without a break (measured here, in
//   the page, with an IntersectionObserver)
// - q25, q50, q75, complete: the first loop of its video reached that quartile
// - click: the viewer opened its link

import { api } from "./api.js";

const FLUSH_MS = 1000;
const BATCH_MAX = 50;
export const VIEWABLE_MS = 2000;
const VIEWABLE_SHARE = 0.5;
const QUARTILES = [[0.25, "q25"], [0.5, "q50"], [0.75, "q75"], [0.98, "complete"]];

export class AdEvents {
  constructor() {
    this.queue = [];
    this.sent = new Set();
    this.timer = null;
    addEventListener("pagehide", () => this.flushOnExit());
  }

  record(item, kind) {
    const id = `${item.impression_id}:${kind}`;
    if (this.sent.has(id)) return;
    this.sent.add(id);
    this.queue.push({ id, impression: item.impression, kind });
    if (kind === "click" || this.queue.length >= BATCH_MAX) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  /** Watch an ad card's player while it is on screen: viewability and quartiles. Returns a function that stops. */
  watch(item, player) {
    let inViewSince = null;
    let timer = null;
    const observer = new IntersectionObserver(([entry]) => {
      if (entry.intersectionRatio >= VIEWABLE_SHARE) {
        inViewSince ??= performance.now();
        timer ??= setTimeout(() => this.record(item, "viewable"), VIEWABLE_MS);
      } else {
        inViewSince = null;
        clearTimeout(timer);
        timer = null;
      }
    }, { threshold: [0, VIEWABLE_SHARE, 1] });
    observer.observe(player);
    let looped = false;
    const onTime = () => {
      if (looped || !player.duration) return;
      const share = player.currentTime / player.duration;
      for (const [at, kind] of QUARTILES) if (share >= at) this.record(item, kind);
    };
    const onSeek = () => { if (player.currentTime < 0.2 && player.played.length) looped = true; };
    player.addEventListener("timeupdate", onTime);
    player.addEventListener("seeked", onSeek);
    return () => {
      observer.disconnect();
      clearTimeout(timer);
      player.removeEventListener("timeupdate", onTime);
      player.removeEventListener("seeked", onSeek);
    };
  }

  async flush() {
    clearTimeout(this.timer);
    this.timer = null;
    const batch = this.queue.splice(0, BATCH_MAX);
    if (!batch.length) return;
    try {
      await api("/api/ads/events", { method: "POST", body: { events: batch } });
    } catch (error) {
      if (error.status === 0 || error.status >= 500) {
        this.queue.unshift(...batch); // sent again with the same ids: counted once
        this.timer ??= setTimeout(() => this.flush(), FLUSH_MS * 3);
      }
    }
  }

  flushOnExit() {
    if (!this.queue.length) return;
    const body = JSON.stringify({ events: this.queue.splice(0, BATCH_MAX) });
    navigator.sendBeacon("/api/ads/events", new Blob([body], { type: "application/json" }));
  }
}
