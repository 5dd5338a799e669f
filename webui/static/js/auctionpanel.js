// The auction panel (templates/parts/auction.html) on the watch page and in the studio: the lot, its price, the
// leader or winner, the countdown on the server's clock, where you stand, the latest bids. It folds whatever the
// page hears about the auction (join snapshot, room events, bid answers) with auction.js, so a page that
// reconnects and folds the same events shows the same panel. Names come from users: textContent only.

import { api } from "./api.js";
import { foldLot, formatRemaining, history, remainingMs, standing, thresholdCrossed } from "./auction.js";
import { cents } from "./money.js";

export const TICK_MS = 250;
export const BIDS_SHOWN_MAX = 8;

const $ = (id) => document.getElementById(id);

function plural(count, unit) {
  return `${count} ${unit}${count === 1 ? "" : "s"}`;
}

function spokenLeft(seconds) {
  return seconds >= 60 && seconds % 60 === 0 ? `${plural(seconds / 60, "minute")} left` : `${plural(seconds, "second")} left`;
}

function entryText(entry) {
  const name = entry.bidder?.name || "Someone";
  const amount = cents(entry.amount_cents);
  switch (entry.kind) {
    case "buy_now":
      return `${name} bought it now for ${amount}`;
    case "proxy":
      return `${name} ${amount} (automatic bid)`;
    case "raise":
      return `${name} raised their maximum`;
    default:
      return entry.outcome === "outbid" ? `${name} bid ${amount}, outbid at once` : `${name} bid ${amount}`;
  }
}

function result(state) {
  if (state.winner) return `Sold to ${state.winner.name || "a bidder"} for ${cents(state.price_cents)}.`;
  return "Ended with no bids.";
}

const STANDING_TEXT = {
  leading: () => "You're the highest bidder.",
  outbid: () => "You've been outbid. Bid again to win it back.",
  won: (state) => `You won it for ${cents(state.price_cents)}!`,
  lost: (state) => `${result(state)} You were outbid.`,
  seller: (state) => (state.state === "open" ? `${plural(state.bids_count, "bid")} so far.` : result(state)),
};

export class AuctionPanel {
  /** `clock` is the page's ServerClock; `onRender(panel)` runs after each render (the bid controls follow it). */
  constructor({ clock, onRender = () => {} }) {
    this.clock = clock;
    this.onRender = onRender;
    this.you = null; // {id} once the page knows who is watching
    this.lot = null;
    this.bidHere = new Set(); // auction ids this viewer bid on from this page (or was outbid on)
    this.termsAsked = new Set();
    this.previousLeftMs = null;
    this.timer = null;
  }

  setViewer(you) {
    this.you = you && you.id ? you : null;
    this.render();
  }

  /** A join snapshot: its `ts` is a clock sample, its `auction` the room's current one (or null). */
  takeSnapshot(snapshot) {
    this.clock.sample(snapshot.ts);
    if (snapshot.auction) this.take(snapshot.auction);
    else this.render();
  }

  /** A room `auction` event. */
  takeEvent(event) {
    this.clock.sample(event.ts);
    if (event.action === "outbid" && this.you && event.user_ids.includes(this.you.id)) {
      this.bidHere.add(event.auction_id);
    }
    this.take(event);
  }

  /** Any auction state: an event, a view, a bid answer's `auction`. */
  take(item) {
    const before = this.lot ? { id: this.lot.id, ...this.lot.state } : null;
    this.lot = foldLot(this.lot, item);
    if (!this.lot.terms) this.askTerms(this.lot.id);
    this.announceChange(before);
    this.render();
  }

  /** Remember that this viewer bid here (the standing says "outbid" once someone passes them). */
  markBid(auctionId) {
    this.bidHere.add(auctionId);
  }

  async askTerms(auctionId) {
    if (this.termsAsked.has(auctionId)) return;
    this.termsAsked.add(auctionId);
    const sentAt = performance.now();
    try {
      const view = await api(`/api/auctions/${encodeURIComponent(auctionId)}`);
      this.clock.sample(view.server_now, sentAt);
      this.take(view);
    } catch {
      this.termsAsked.delete(auctionId); // the next event asks again
    }
  }

  leftMs() {
    return this.lot ? remainingMs(this.lot, this.clock.now()) : null;
  }

  /** Open by the server's last word and not past its end by the server's clock as estimated here. */
  get biddable() {
    const left = this.leftMs();
    return Boolean(this.lot && this.lot.terms && this.lot.state.state === "open" && left !== null && left > 0);
  }

  standing() {
    return this.lot ? standing(this.lot, this.you?.id ?? null, { bidHere: this.bidHere.has(this.lot.id) }) : "watching";
  }

  announce(text) {
    $("auction-announcer").textContent = text;
  }

  announceChange(before) {
    const state = this.lot.state;
    if (!before || before.id !== this.lot.id) {
      if (before && state.state === "open") this.announce("A new auction has started.");
      return;
    }
    if (before.state === "open" && state.state === "closed") {
      this.announce(`Auction over. ${result(state)}`);
    } else if (state.state === "open" && state.ends_at > before.ends_at) {
      const left = this.leftMs();
      this.announce(`Late bid: the auction is extended${left === null ? "" : `, ${formatRemaining(left)} left`}.`);
    }
  }

  render() {
    const panel = $("auction-panel");
    const lot = this.lot;
    if (!lot || !lot.state) {
      panel.hidden = true;
      clearInterval(this.timer);
      this.timer = null;
      this.onRender(this);
      return;
    }
    const { state, terms } = lot;
    const closed = state.state === "closed";
    panel.hidden = false;
    panel.dataset.state = state.state;
    panel.dataset.auctionId = String(lot.id);
    if (terms) {
      const variant = terms.variant || {};
      $("auction-title").textContent = terms.product?.title ?? "";
      $("auction-variant").textContent = [terms.product?.base_item?.name, variant.size, variant.colour]
        .filter(Boolean).join(" · ");
      if (variant.mockup_url && $("auction-mockup").getAttribute("src") !== variant.mockup_url) {
        $("auction-mockup").src = variant.mockup_url;
      }
    }
    $("auction-heading").textContent = closed ? "Auction ended" : "Live auction";
    $("auction-price-label").textContent = closed ? (state.winner ? "Sold for" : "Starting bid")
      : (state.leader ? "Current bid" : "Starting bid");
    $("auction-price").textContent = cents(state.price_cents);
    const person = closed ? state.winner : state.leader;
    $("auction-leader").previousElementSibling.textContent = closed ? "Winner" : "Leader";
    $("auction-leader").textContent = person ? person.name || "a bidder" : (closed ? "None" : "No bids yet");
    const where = this.standing();
    const line = $("auction-standing");
    line.dataset.standing = where;
    const text = STANDING_TEXT[where]?.(state) ?? (closed ? result(state) : "");
    if (line.textContent !== text) line.textContent = text;
    const orderLine = document.getElementById("auction-order"); // the watch page's: the winner's way to the order
    if (orderLine) orderLine.hidden = where !== "won";
    this.renderBids();
    this.tick();
    this.onRender(this);
    if (!closed && this.timer === null) this.timer = setInterval(() => this.tick(), TICK_MS);
    if (closed && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  renderBids() {
    const entries = history(this.lot).slice(-BIDS_SHOWN_MAX).reverse();
    const list = $("auction-bids");
    const shown = [...list.children].map((li) => li.dataset.seq).join(",");
    if (shown === entries.map((e) => String(e.seq)).join(",")) return;
    list.replaceChildren(...entries.map((entry) => {
      const li = document.createElement("li");
      li.dataset.seq = String(entry.seq);
      li.dataset.kind = entry.kind;
      li.textContent = entryText(entry);
      if (this.you && entry.bidder?.id === this.you.id) li.classList.add("mine");
      return li;
    }));
  }

  /** The countdown: shown every tick, announced only at ANNOUNCE_AT_S; at zero it waits for the server's close. */
  tick() {
    const badge = $("auction-badge");
    const countdown = $("auction-countdown");
    const { state } = this.lot;
    if (state.state === "closed") {
      badge.textContent = state.winner ? "Sold" : "Unsold";
      badge.classList.remove("live");
      countdown.textContent = "Ended";
      this.previousLeftMs = null;
      return;
    }
    const left = this.leftMs();
    countdown.textContent = left === null ? "…" : left > 0 ? formatRemaining(left) : "Closing…";
    countdown.classList.toggle("urgent", left !== null && left <= 10_000);
    badge.textContent = left === 0 ? "Closing" : "Live";
    badge.classList.toggle("live", left !== 0);
    const crossed = thresholdCrossed(this.previousLeftMs, left);
    if (crossed !== null) this.announce(spokenLeft(crossed));
    const wasBiddable = this.previousLeftMs !== null && this.previousLeftMs > 0;
    this.previousLeftMs = left;
    if (wasBiddable && left === 0) this.onRender(this); // bidding stops at the end by the server's clock
  }
}
