// Gifts as they arrive (a burst per combo: sender, icon, gift, "×n", dimmed on `gift_end`) and the stream's top
// gifters, kept live. Shared by the watch and studio pages. Names come from users, so they go in as textContent.

import { api } from "./api.js";

// The feed keeps the newest few bursts so a busy room cannot grow the page without limit.
export const BURSTS_MAX = 6;
// A burst of gifts reloads the board once, not once per gift.
export const LEADERS_REFRESH_MS = 300;

const numbers = new Intl.NumberFormat();

function span(className, text) {
  const element = document.createElement("span");
  element.className = className;
  element.textContent = text;
  return element;
}

function burstElement(giftId) {
  const item = document.createElement("li");
  item.className = "gift-burst";
  item.dataset.gift = giftId;
  const icon = document.createElement("img");
  icon.className = "gift-icon";
  icon.alt = ""; // the gift's name is in the text
  const count = document.createElement("strong");
  count.className = "gift-combo";
  item.append(icon, span("gift-text", ""), count);
  return item;
}

function leaderElement(leader) {
  const li = document.createElement("li");
  li.dataset.userId = String(leader.user.id);
  const coins = span("leader-coins", numbers.format(leader.coins));
  coins.append(span("visually-hidden", " coins"));
  li.append(span("leader-name", leader.user.name || leader.user.username), coins);
  return li;
}

/** One room's gift feed (`feed`, an <ol>) and top gifters (`leaders`, an <ol>; `emptyNote` shown when empty). */
export class GiftFeed {
  constructor({ feed, leaders, emptyNote = null }) {
    this.feed = feed;
    this.leaders = leaders;
    this.emptyNote = emptyNote;
    this.roomId = null;
    this.combos = new Map(); // "userId:giftId" -> the burst showing that running combo
    this.refreshTimer = null;
    this.latestRequest = 0; // an older board answering late must not overwrite a newer one
  }

  /** Show `roomId` from now on: an empty feed and its current top gifters. */
  show(roomId) {
    this.roomId = String(roomId);
    this.combos.clear();
    this.feed.replaceChildren();
    this.renderLeaders([]);
    this.refreshLeadersSoon();
  }

  /** Apply a room event; true when it was a gift event. */
  apply(event) {
    switch (event.type) {
      case "gift":
        this.burst(event);
        this.refreshLeadersSoon();
        return true;
      case "gift_end":
        this.endCombo(event);
        return true;
      default:
        return false;
    }
  }

  /** Reload the board shortly, once for however many calls come in the meantime (gifts, a join snapshot). */
  refreshLeadersSoon() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => this.refreshLeaders(), LEADERS_REFRESH_MS);
  }

  async refreshLeaders() {
    const { roomId } = this;
    if (roomId === null) return;
    const request = ++this.latestRequest;
    try {
      const board = await api(`/api/streams/${encodeURIComponent(roomId)}/leaderboard`);
      if (request === this.latestRequest && roomId === this.roomId) this.renderLeaders(board.leaders);
    } catch {
      // The board is derived data; the next gift or join reloads it.
    }
  }

  renderLeaders(leaders) {
    this.leaders.replaceChildren(...leaders.map(leaderElement));
    if (this.emptyNote) this.emptyNote.hidden = leaders.length > 0;
  }

  burst(event) {
    const key = `${event.user.id}:${event.gift.id}`;
    let item = this.combos.get(key);
    if (!item) {
      item = burstElement(event.gift.id);
      this.combos.set(key, item);
      this.feed.prepend(item);
      while (this.feed.children.length > BURSTS_MAX) this.forget(this.feed.lastElementChild);
    }
    item.querySelector(".gift-icon").src = event.gift.icon_url;
    item.querySelector(".gift-text").textContent = `${event.user.name || "Someone"} sent ${event.gift.name}`;
    item.querySelector(".gift-combo").textContent = `×${event.combo}`;
    item.classList.remove("pop");
    void item.offsetWidth; // restart the CSS animation on each repeat
    item.classList.add("pop");
  }

  endCombo(event) {
    const key = `${event.user.id}:${event.gift.id}`;
    const item = this.combos.get(key);
    if (!item) return; // the burst already dropped off the feed, or began before this page joined
    this.combos.delete(key);
    if (event.combo) item.querySelector(".gift-combo").textContent = `×${event.combo}`;
    item.classList.remove("pop");
    item.classList.add("ended");
  }

  forget(item) {
    for (const [key, shown] of this.combos) if (shown === item) this.combos.delete(key);
    item.remove();
  }
}
