// The watch page: stream info, live chat, likes and moderation for one room.
// Everything a user typed is put on the page with textContent, never as HTML.

import { ApiError, api, currentUser } from "./api.js";
import { chatLineElement } from "./chatline.js";
import { wireBuy } from "./checkout.js";
import { GiftFeed } from "./giftfeed.js";
import { applyWalletEvent, installGiftTray } from "./gifts.js";
import { startPlayer } from "./player.js";
import { PinnedCard } from "./productcard.js";
import { RoomClient } from "./room.js";
import { RoomShop } from "./roomshop.js";

// The DOM keeps a bounded chat history so a busy room cannot grow the page without limit.
const CHAT_LINES_MAX = 250;
const SCROLL_STICK_PX = 48;
const TIMEOUT_S = 60;

const $ = (id) => document.getElementById(id);
const chatList = $("chat-list");
const chatInput = $("chat-input");
const chatSend = $("chat-send");
const numbers = new Intl.NumberFormat();
const giftFeed = new GiftFeed({ feed: $("gift-feed"), leaders: $("top-gifters"), emptyNote: $("leaders-empty") });
const pinnedCard = new PinnedCard();
const shop = new RoomShop({ onPin: (product) => pinnedCard.show(product) });
wireBuy($("pinned-buy"), () => [pinnedCard.product, pinnedCard.selectedVariant()?.id]);
let player = null; // the video player, once the stream is known

const view = {
  you: null, // null for an anonymous viewer (the server says id 0)
  creatorId: null,
  epoch: null, // the epoch the chat list was rendered from; another epoch replaces the list
  connected: false,
  banned: false,
  state: "",
  likes: 0,
  timedOutUntilMs: 0,
  timeoutTimer: null,
  lines: new Map(), // String(chat id) -> <li>
};
// The ids exactly as the server sent them, for commands: dataset values are strings, ids may not be.
const chatRefs = new WeakMap(); // <li> -> {id, userId}

function showBanner(text) {
  const banner = $("page-banner");
  banner.textContent = text;
  banner.hidden = false;
}

function setNotice(...parts) {
  $("chat-notice").replaceChildren(...parts);
}

function loginLink(text) {
  const link = document.createElement("a");
  link.href = `/login.html?next=${encodeURIComponent(location.pathname + location.search)}`;
  link.textContent = text;
  return link;
}

function setStreamState(state) {
  view.state = state;
  const badge = $("stream-state");
  badge.dataset.state = state;
  badge.textContent = { live: "Live", ended: "Ended", created: "Starting soon" }[state] ?? state;
  badge.classList.toggle("live", state === "live");
}

function setViewers(count) {
  $("viewer-count").textContent = numbers.format(count);
}

function setLikes(total) {
  view.likes = total;
  $("like-total").textContent = numbers.format(total);
}

function updateChatControls() {
  const timedOut = view.timedOutUntilMs > Date.now();
  const canChat = view.connected && view.you !== null && !view.banned && !timedOut;
  chatInput.disabled = !canChat;
  chatSend.disabled = !canChat;
  // Guests may watch but not like; the server would only answer their taps with an error.
  $("like-button").disabled = view.banned || view.you === null;
  $("mod-tools").hidden = !(view.you && view.you.is_moderator) || view.banned;
}

function isNearBottom() {
  return chatList.scrollHeight - chatList.scrollTop - chatList.clientHeight < SCROLL_STICK_PX;
}

function appendLine(li) {
  const stick = isNearBottom();
  chatList.append(li);
  while (chatList.children.length > CHAT_LINES_MAX) {
    const oldest = chatList.firstElementChild;
    view.lines.delete(oldest.dataset.id);
    oldest.remove();
  }
  if (stick) chatList.scrollTop = chatList.scrollHeight;
}

function systemLine(text, kind = "") {
  const li = document.createElement("li");
  li.className = kind ? `system ${kind}` : "system";
  const span = document.createElement("span");
  span.className = "line text";
  span.textContent = text;
  li.append(span);
  appendLine(li);
}

function modButton(action, label, ariaLabel) {
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.action = action;
  button.textContent = label;
  button.setAttribute("aria-label", ariaLabel);
  return button;
}

function modActions(li) {
  const name = li.querySelector(".author").textContent;
  const actions = document.createElement("span");
  actions.className = "mod-actions";
  actions.append(modButton("delete", "Delete", `Delete message from ${name}`));
  // The server refuses sanctions against the creator and against oneself, so those buttons are not offered.
  const target = li.dataset.userId;
  if (target !== String(view.you.id) && target !== String(view.creatorId)) {
    actions.append(
      modButton("timeout", `Timeout ${TIMEOUT_S}s`, `Time out ${name} for ${TIMEOUT_S} seconds`),
      modButton("ban", "Ban", `Ban ${name} from this room`),
    );
  }
  return actions;
}

/** Give every line moderation buttons exactly when this user is a moderator. */
function syncModActions() {
  const moderator = Boolean(view.you && view.you.is_moderator);
  for (const li of view.lines.values()) {
    const current = li.querySelector(".mod-actions");
    if (moderator && !current) li.append(modActions(li));
    if (!moderator && current) current.remove();
  }
}

function addChat(event) {
  const id = String(event.id);
  if (view.lines.has(id)) return; // a resume may replay what the snapshot already showed
  const user = event.user || {};
  const li = chatLineElement(event);
  li.dataset.userId = String(user.id ?? "");
  chatRefs.set(li, { id: event.id, userId: user.id });
  if (view.you && user.id === view.you.id) li.classList.add("mine");
  if (event.ts) li.title = new Date(event.ts).toLocaleTimeString();
  view.lines.set(id, li);
  if (view.you && view.you.is_moderator) li.append(modActions(li));
  appendLine(li);
}

function removeChat(id) {
  const li = view.lines.get(String(id));
  if (!li) return;
  view.lines.delete(String(id));
  li.remove();
}

function nameOf(userId) {
  for (const li of view.lines.values()) {
    if (li.dataset.userId === String(userId)) return li.querySelector(".author").textContent;
  }
  return "A user";
}

function setSlowMode(seconds) {
  const select = $("slow-mode");
  if (![...select.options].some((option) => option.value === String(seconds))) {
    select.add(new Option(`${seconds} s`, String(seconds)));
  }
  select.value = String(seconds);
  setNotice(seconds > 0 ? `Slow mode: one message every ${seconds} s.` : "");
}

function applySnapshot(snapshot) {
  view.you = snapshot.you && snapshot.you.id ? snapshot.you : null;
  if (snapshot.epoch !== view.epoch) {
    view.epoch = snapshot.epoch;
    view.lines.clear();
    chatList.replaceChildren();
  }
  syncModActions();
  for (const chat of snapshot.recent ?? []) addChat(chat);
  setViewers(snapshot.viewers ?? 0);
  setLikes(snapshot.likes ?? 0);
  setStreamState(snapshot.state ?? view.state);
  setSlowMode(snapshot.slow_mode_s ?? 0);
  giftFeed.refreshLeadersSoon(); // a join or a reset does not replay the gifts sent before it
  shop.takeSnapshot(snapshot);
  if (view.you === null) setNotice("You are watching as a guest. ", loginLink("Log in to chat"), ".");
  updateChatControls();
}

function applyTimeout(event) {
  if (!view.you || event.user_id !== view.you.id) {
    if (view.you && view.you.is_moderator) systemLine(`${nameOf(event.user_id)} was timed out.`);
    return;
  }
  // Measured from the event's own server timestamp, so a skewed browser clock cannot lengthen or skip it.
  const remainingMs = Math.max(0, event.until_ms - (event.ts ?? Date.now()));
  view.timedOutUntilMs = Date.now() + remainingMs;
  clearTimeout(view.timeoutTimer);
  const until = new Date(view.timedOutUntilMs).toLocaleTimeString();
  systemLine(`A moderator timed you out until ${until}.`, "error");
  updateChatControls();
  view.timeoutTimer = setTimeout(updateChatControls, remainingMs + 50);
}

function applyModeration(event) {
  const moderator = Boolean(view.you && view.you.is_moderator);
  switch (event.action) {
    case "delete":
      removeChat(event.id);
      break;
    case "timeout":
      applyTimeout(event);
      break;
    case "ban":
      if (moderator) systemLine(`${nameOf(event.user_id)} was banned.`);
      break;
    case "unban":
      if (moderator) systemLine("A user was unbanned.");
      break;
    case "slow_mode":
      setSlowMode(event.seconds);
      systemLine(event.seconds > 0 ? `Slow mode is on: one message every ${event.seconds} s.` : "Slow mode is off.");
      break;
    case "blocked_words":
      if (moderator) systemLine(`Blocked words updated (${event.count}).`);
      break;
    default:
      break;
  }
}

function applyEvent(event) {
  switch (event.type) {
    case "snapshot":
      applySnapshot(event);
      break;
    case "reset":
      view.epoch = null; // the snapshot that follows in the same frame replaces everything
      break;
    case "chat":
      addChat(event);
      break;
    case "like":
      // Totals only grow; max() keeps this user's optimistic taps until the server's total includes them.
      setLikes(Math.max(view.likes, event.total));
      break;
    case "viewers":
      setViewers(event.count);
      break;
    case "stream":
      setStreamState(event.state);
      if (event.state === "ended") systemLine("The stream has ended.");
      if (event.state === "live") player?.reconnectNow(); // its publisher (re)connected: no need to wait
      break;
    case "moderation":
      applyModeration(event);
      break;
    case "error":
      if (event.command !== "ping") systemLine(event.detail || `Error: ${event.code}`, "error");
      break;
    default:
      // gift, gift_end, wallet, product_pinned, auction
      if (!giftFeed.apply(event) && !shop.apply(event)) applyWalletEvent(event);
      break;
  }
}

const STATUS_TEXT = {
  connecting: "Connecting…",
  open: "Connected",
  banned: "Banned",
  unauthorized: "Not logged in",
  closed: "Disconnected",
};

function applyStatus(state, info) {
  const status = $("conn-status");
  status.dataset.state = state;
  status.textContent = state === "reconnecting"
    ? `Reconnecting${info.delayMs >= 1000 ? ` in ${Math.round(info.delayMs / 1000)} s` : ""}…`
    : STATUS_TEXT[state] ?? state;
  view.connected = state === "open";
  if (state === "banned") {
    view.banned = true;
    showBanner("You are banned from this room");
  }
  if (state === "unauthorized") setNotice(loginLink("Log in"), " to join the chat.");
  updateChatControls();
}

function wireChat(room) {
  $("chat-form").addEventListener("submit", (submit) => {
    submit.preventDefault();
    const text = chatInput.value.trim();
    if (!text) return;
    if (room.send({ type: "chat", text })) {
      chatInput.value = "";
    } else {
      systemLine("Not connected yet; your message is still in the box.", "error");
    }
    chatInput.focus();
  });
  chatList.addEventListener("click", (click) => {
    const button = click.target.closest("button[data-action]");
    if (!button) return;
    const { id, userId } = chatRefs.get(button.closest("li"));
    const commands = {
      delete: { type: "delete", id },
      timeout: { type: "timeout", user_id: userId, seconds: TIMEOUT_S },
      ban: { type: "ban", user_id: userId },
    };
    room.send(commands[button.dataset.action]);
  });
  $("slow-mode").addEventListener("change", (change) => {
    room.send({ type: "slow_mode", seconds: Number(change.target.value) });
  });
}

function wireLikes(room) {
  const button = $("like-button");
  button.addEventListener("click", () => {
    room.like(1);
    setLikes(view.likes + 1);
    button.classList.remove("pulse");
    void button.offsetWidth; // restart the CSS animation on every tap
    button.classList.add("pulse");
  });
}

async function loadStream(roomId) {
  try {
    const stream = await api(`/api/streams/${encodeURIComponent(roomId)}`);
    $("stream-title").textContent = stream.title;
    document.title = `${stream.title} · livecore`;
    const creator = stream.creator || {};
    view.creatorId = creator.id ?? null;
    $("stream-creator").textContent = `by ${creator.display_name || creator.username || "unknown"}`
      + (creator.username ? ` (@${creator.username})` : "");
    setStreamState(stream.state);
    setViewers(stream.viewers ?? 0);
    return true;
  } catch (error) {
    const gone = error instanceof ApiError && error.status === 404;
    $("stream-title").textContent = gone ? "Stream not found" : "Could not load the stream";
    showBanner(gone ? "There is no stream here. It may have been removed." : error.message);
    return !gone;
  }
}

async function main() {
  const roomId = new URLSearchParams(location.search).get("room");
  if (!roomId) {
    $("stream-title").textContent = "No stream chosen";
    showBanner("Pick a stream from the live directory.");
    return;
  }
  if (!(await loadStream(roomId))) return;
  giftFeed.show(roomId);
  currentUser().then((me) => {
    shop.setAccount(me, loginLink("").href);
    return installGiftTray(roomId, { me, creatorId: view.creatorId });
  }).catch(() => {});
  const room = new RoomClient(roomId, { onEvent: applyEvent, onStatus: applyStatus });
  wireChat(room);
  wireLikes(room);
  player = startPlayer(roomId, { video: $("video"), placeholder: $("video-placeholder") });
  window.addEventListener("online", () => room.reconnectNow());
  room.connect();
}

main();
