// The watch page's money parts: the gift tray (pick, send, see your balance drop), gift animations with combo
// counts, and the stream's top gifters. Names come from users, so they are set with textContent only.

import { ApiError, api } from "./api.js";

const ANIMATIONS_MAX = 6;
const $ = (id) => document.getElementById(id);
const numbers = new Intl.NumberFormat();
const combos = new Map(); // "userId:giftId" -> the animation element showing that combo

let roomId = null;
let leaderTimer = null;

function newKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

function setBalance(coins) {
  $("coin-balance").textContent = numbers.format(coins);
  $("coin-balance").dataset.coins = String(coins);
}

function setTrayNotice(text) {
  $("gift-notice").textContent = text;
}

async function sendGift(giftId, button) {
  button.disabled = true;
  setTrayNotice("");
  try {
    const sent = await api(`/api/streams/${encodeURIComponent(roomId)}/gifts`, {
      method: "POST", body: { gift_id: giftId, count: 1, idempotency_key: newKey() },
    });
    setBalance(sent.coins_balance);
  } catch (error) {
    const short = error instanceof ApiError && error.type === "livecore:insufficient-funds";
    setTrayNotice(short ? "Not enough coins. Buy more in your wallet." : error.message);
  } finally {
    button.disabled = false;
  }
}

function giftButton(gift) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "gift-button";
  button.dataset.gift = gift.id;
  button.setAttribute("aria-label", `Send ${gift.name} for ${gift.coins} coins`);
  const icon = document.createElement("span");
  icon.className = "gift-icon";
  icon.setAttribute("aria-hidden", "true");
  icon.textContent = gift.icon;
  const label = document.createElement("span");
  label.textContent = `${gift.name} · ${numbers.format(gift.coins)}`;
  button.append(icon, label);
  button.addEventListener("click", () => sendGift(gift.id, button));
  return button;
}

/** Fill the tray for a logged-in viewer (not the creator); everyone sees animations and the top gifters. */
export async function installGifts(room, { me, creatorId }) {
  roomId = room;
  refreshLeaders();
  if (!me || me.id === creatorId) return;
  const [catalogue, wallet] = await Promise.all([api("/api/gifts"), api("/api/wallet")]);
  $("gift-list").replaceChildren(...catalogue.gifts.map(giftButton));
  setBalance(wallet.coins);
  $("gift-tray").hidden = false;
}

function animate(event) {
  const key = `${event.user.id}:${event.gift.id}`;
  let item = combos.get(key);
  if (!item) {
    item = document.createElement("li");
    item.className = "gift-burst";
    item.dataset.gift = event.gift.id;
    const icon = document.createElement("span");
    icon.className = "gift-icon";
    icon.textContent = event.gift.icon;
    const text = document.createElement("span");
    text.className = "gift-text";
    const count = document.createElement("strong");
    count.className = "gift-combo";
    item.append(icon, text, count);
    combos.set(key, item);
    const list = $("gift-feed");
    list.prepend(item);
    while (list.children.length > ANIMATIONS_MAX) {
      const last = list.lastElementChild;
      for (const [k, v] of combos) if (v === last) combos.delete(k);
      last.remove();
    }
  }
  item.querySelector(".gift-text").textContent = `${event.user.name} sent ${event.gift.name}`;
  item.querySelector(".gift-combo").textContent = `×${event.combo}`;
  item.classList.remove("pop");
  void item.offsetWidth; // restart the CSS animation on each repeat
  item.classList.add("pop");
}

function endCombo(event) {
  const key = `${event.user.id}:${event.gift.id}`;
  const item = combos.get(key);
  if (item) {
    item.classList.add("ended");
    combos.delete(key);
  }
}

async function refreshLeaders() {
  try {
    const board = await api(`/api/streams/${encodeURIComponent(roomId)}/leaderboard`);
    const rows = board.leaders.map((leader) => {
      const li = document.createElement("li");
      const name = document.createElement("span");
      name.textContent = leader.user.name || leader.user.username;
      const coins = document.createElement("span");
      coins.className = "leader-coins";
      coins.textContent = numbers.format(leader.coins);
      li.append(name, coins);
      return li;
    });
    $("top-gifters").replaceChildren(...rows);
  } catch {
    // The board is derived data; the next gift refreshes it.
  }
}

/** Room events for this module: gift, gift_end and the private wallet update; false if not ours. */
export function applyGiftEvent(event) {
  switch (event.type) {
    case "gift":
      animate(event);
      clearTimeout(leaderTimer);
      leaderTimer = setTimeout(refreshLeaders, 300); // one refresh per burst, not per gift
      return true;
    case "gift_end":
      endCombo(event);
      return true;
    case "wallet":
      setBalance(event.coins);
      return true;
    default:
      return false;
  }
}
