// The watch page's gift tray: pick a gift, send it, see your balance drop. The gifts as they arrive and the top
// gifters are giftfeed.js, shared with the studio.

import { ApiError, api } from "./api.js";

const $ = (id) => document.getElementById(id);
const numbers = new Intl.NumberFormat();

let roomId = null;

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
  const icon = document.createElement("img");
  icon.className = "gift-icon";
  icon.src = gift.icon_url;
  icon.alt = ""; // the label and the button's aria-label name the gift
  const label = document.createElement("span");
  label.textContent = `${gift.name} · ${numbers.format(gift.coins)}`;
  button.append(icon, label);
  button.addEventListener("click", () => sendGift(gift.id, button));
  return button;
}

/** Fill and show the tray for a logged-in viewer who is not the stream's creator. */
export async function installGiftTray(room, { me, creatorId }) {
  roomId = room;
  if (!me || me.id === creatorId) return;
  const [catalogue, wallet] = await Promise.all([api("/api/gifts"), api("/api/wallet")]);
  $("gift-list").replaceChildren(...catalogue.gifts.map(giftButton));
  setBalance(wallet.coins);
  $("gift-tray").hidden = false;
}

/** The private `wallet` event (your balance after a gift sent over the room socket); false if not that. */
export function applyWalletEvent(event) {
  if (event.type !== "wallet") return false;
  setBalance(event.coins);
  return true;
}
