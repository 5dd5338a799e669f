// The watch page's bid controls in the auction panel: buttons at the next amounts, a maximum (proxy) bid, buy it now,
// the server's refusals in words, and saving the local test card when a bid is refused for the lack of one (the
// refused bid is then placed). Bids go over HTTP so a refusal is a problem+json with its facts.

import { ApiError, api } from "./api.js";
import { nextBids } from "./auction.js";
import { cents, newKey, parseDollars } from "./money.js";

export const QUICK_BIDS = 3;
// A win is charged off-session, so the second click of buy-it-now must come soon after the first.
export const BUY_NOW_CONFIRM_MS = 8_000;
const MAX_KEY = "livecore:auction-max"; // sessionStorage: `${key}:${auctionId}:${userId}` -> cents

const $ = (id) => document.getElementById(id);

export class Bidding {
  constructor(panel) {
    this.panel = panel; // its `you` (from the join snapshot) is who bids
    this.pending = null; // the refused offer waiting for a saved card: {path, body, what}
    this.busy = false;
    this.confirmTimer = null;
    this.renderedAmounts = "";
    $("max-bid-form").addEventListener("submit", (submit) => {
      submit.preventDefault();
      this.bidUpTo();
    });
    $("buy-now").addEventListener("click", () => this.askBuyNow());
    $("buy-now-yes").addEventListener("click", () => this.buyNow());
    $("buy-now-no").addEventListener("click", () => this.closeConfirm());
    $("card-form").addEventListener("submit", (submit) => {
      submit.preventDefault();
      this.saveCard();
    });
    $("card-cancel").addEventListener("click", () => this.closeCardForm());
  }

  /** The signed-in account (null for a guest, who gets a log-in link instead of the controls). */
  async setViewer(me, loginUrl) {
    $("bid-login-link").href = loginUrl;
    if (me) await this.showSavedCard();
  }

  async showSavedCard() {
    try {
      const { methods } = await api("/api/payment-methods");
      const card = methods.at(-1);
      $("card-line").textContent = card ? `Bids are backed by your ${card.brand} card ending in ${card.last4}.` : "";
    } catch {
      $("card-line").textContent = "";
    }
  }

  maxKey(auctionId) {
    return `${MAX_KEY}:${auctionId}:${this.panel.you?.id}`;
  }

  yourMax() {
    const lot = this.panel.lot;
    if (!lot || !this.panel.you) return null;
    const stored = sessionStorage.getItem(this.maxKey(lot.id));
    return stored === null ? null : Number(stored);
  }

  /** Follow the panel: which controls show, the amounts on the buttons, your maximum. */
  render() {
    const lot = this.panel.lot;
    const where = this.panel.standing();
    const open = this.panel.biddable;
    const you = this.panel.you;
    $("bid-login").hidden = Boolean(you) || !open;
    $("bidding").hidden = !you || where === "seller" || !open;
    const max = this.yourMax();
    $("auction-your-max-row").hidden = max === null;
    if (max !== null) {
      const passed = lot.state.leader?.id !== you.id && lot.state.price_cents >= max;
      $("auction-your-max").textContent = `${cents(max)}${passed ? " (passed)" : ""}`;
    }
    if ($("bidding").hidden) {
      this.closeConfirm();
      return;
    }
    const leading = where === "leading";
    const amounts = leading ? [] : nextBids(lot, QUICK_BIDS);
    const key = amounts.join(",");
    if (key !== this.renderedAmounts) {
      this.renderedAmounts = key;
      $("bid-buttons").replaceChildren(...amounts.map((amount, index) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = index === 0 ? "primary bid-button" : "bid-button";
        button.dataset.amount = String(amount);
        button.textContent = `Bid ${cents(amount)}`;
        button.addEventListener("click", () => this.bid(amount));
        return button;
      }));
    }
    for (const button of $("bid-buttons").children) button.disabled = this.busy;
    const input = $("max-bid-input");
    const floor = leading ? Math.max(lot.state.min_next_cents, (max ?? 0) + 1) : lot.state.min_next_cents;
    input.min = (floor / 100).toFixed(2);
    input.placeholder = `${(floor / 100).toFixed(2)} or more`;
    $("max-bid-submit").textContent = leading ? "Raise my maximum" : "Bid up to this";
    $("max-bid-submit").disabled = this.busy;
    const buyNow = lot.terms?.buy_now_cents;
    $("buy-now-box").hidden = !(lot.state.buy_now_available && buyNow);
    if (buyNow) {
      $("buy-now").textContent = `Buy it now · ${cents(buyNow)}`;
      $("buy-now-yes").textContent = `Confirm: buy for ${cents(buyNow)}`;
    }
    $("buy-now").disabled = this.busy;
  }

  setError(text) {
    $("bid-error").textContent = text;
  }

  bid(amount) {
    const lot = this.panel.lot;
    this.offer(`/api/auctions/${lot.id}/bids`, { amount_cents: amount }, `bid ${cents(amount)}`);
  }

  bidUpTo() {
    const lot = this.panel.lot;
    const max = parseDollars($("max-bid-input").value);
    const minimum = lot.state.min_next_cents;
    if (max === null) {
      this.setError("Type your maximum in dollars, like 25 or 25.50.");
      $("max-bid-input").setAttribute("aria-invalid", "true");
      return;
    }
    if (max < minimum) {
      this.setError(`Your maximum must be at least the next bid, ${cents(minimum)}.`);
      $("max-bid-input").setAttribute("aria-invalid", "true");
      return;
    }
    $("max-bid-input").removeAttribute("aria-invalid");
    this.offer(`/api/auctions/${lot.id}/bids`, { amount_cents: minimum, max_cents: max },
      `bid up to ${cents(max)}`);
  }

  askBuyNow() {
    $("buy-now").hidden = true;
    $("buy-now-confirm").hidden = false;
    $("buy-now-yes").focus();
    clearTimeout(this.confirmTimer);
    this.confirmTimer = setTimeout(() => this.closeConfirm(), BUY_NOW_CONFIRM_MS);
  }

  closeConfirm() {
    clearTimeout(this.confirmTimer);
    const wasOpen = !$("buy-now-confirm").hidden;
    $("buy-now-confirm").hidden = true;
    $("buy-now").hidden = false;
    if (wasOpen && !$("bidding").hidden) $("buy-now").focus();
  }

  buyNow() {
    clearTimeout(this.confirmTimer);
    $("buy-now-confirm").hidden = true;
    $("buy-now").hidden = false;
    const lot = this.panel.lot;
    this.offer(`/api/auctions/${lot.id}/buy-now`, {}, `buy it now for ${cents(lot.terms.buy_now_cents)}`);
  }

  /** Send a bid or buy-it-now once; a retry after saving a card reuses its idempotency key. */
  async offer(path, body, what, key = newKey()) {
    if (this.busy) return;
    this.busy = true;
    this.setError("");
    this.render();
    const auctionId = this.panel.lot.id;
    try {
      const answer = await api(path, { method: "POST", body: { ...body, idempotency_key: key } });
      this.panel.markBid(auctionId);
      if (answer.bid && answer.bid.kind !== "buy_now") {
        sessionStorage.setItem(this.maxKey(auctionId), String(answer.bid.max_cents ?? answer.bid.amount_cents));
      }
      this.panel.take(answer.auction);
      if (answer.outcome === "outbid") this.setError("Another bidder's maximum was higher: you were outbid at once.");
    } catch (error) {
      this.refused(error, { path, body, what, key });
    } finally {
      this.busy = false;
      this.render();
    }
  }

  refused(error, attempt) {
    if (!(error instanceof ApiError)) throw error;
    if (error.problem.auction) this.panel.take(error.problem.auction);
    switch (error.slug) {
      case "payment-method-required":
        this.pending = attempt;
        this.openCardForm(`Save card and ${attempt.what}`);
        this.setError("Bidding needs a saved card, so a win can be charged.");
        return;
      case "bid-too-low":
        this.setError(`Someone bid first: the next bid is at least ${cents(error.problem.min_next_cents)}.`);
        return;
      case "auction-closed":
        this.setError("The auction has ended.");
        return;
      default:
        this.setError(error.status === 401 ? "Log in again to bid." : error.detail);
    }
  }

  openCardForm(label) {
    $("card-form").hidden = false;
    $("card-save").textContent = label;
    $("card-number").focus();
  }

  closeCardForm() {
    this.pending = null;
    $("card-form").hidden = true;
  }

  async saveCard() {
    const number = $("card-number").value.replace(/\D/g, "");
    $("card-save").disabled = true;
    try {
      const card = await api("/api/payment-methods", { method: "POST", body: { card_number: number } });
      $("card-line").textContent = `Card saved: your ${card.brand} card ending in ${card.last4}.`;
      const pending = this.pending;
      this.closeCardForm();
      this.setError("");
      if (pending && this.panel.biddable) await this.offer(pending.path, pending.body, pending.what, pending.key);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      this.setError(error.slug === "card-not-accepted"
        ? "This node saves cards through Stripe; card entry with Stripe.js is not on this page yet."
        : error.detail);
    } finally {
      $("card-save").disabled = false;
    }
  }
}
