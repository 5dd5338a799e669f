// The live directory: who is live now, refreshed while the page is visible.

import { api } from "./api.js";

const REFRESH_MS = 20_000;
const list = document.getElementById("live-list");
const status = document.getElementById("live-status");
const numbers = new Intl.NumberFormat();
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

function startedAgo(startedAt) {
  const started = Date.parse(startedAt);
  if (Number.isNaN(started)) return "";
  const minutes = Math.round((started - Date.now()) / 60_000);
  if (minutes > -60) return `started ${relative.format(minutes, "minute")}`;
  return `started ${relative.format(Math.round(minutes / 60), "hour")}`;
}

function streamCard(stream) {
  const creator = stream.creator || {};
  const li = document.createElement("li");
  li.className = "stream-card";
  li.dataset.id = String(stream.id);
  const link = document.createElement("a");
  link.href = `/watch.html?room=${encodeURIComponent(stream.id)}`;
  const thumb = document.createElement("span");
  thumb.className = "thumb";
  thumb.setAttribute("aria-hidden", "true");
  const badge = document.createElement("span");
  badge.className = "badge live";
  badge.textContent = "Live";
  if (stream.thumbnail_url) {
    const picture = document.createElement("img");
    picture.src = stream.thumbnail_url;
    picture.alt = "";
    picture.loading = "lazy";
    thumb.append(picture);
  }
  thumb.append(badge);
  const title = document.createElement("span");
  title.className = "title";
  title.textContent = stream.title;
  const who = document.createElement("span");
  who.className = "meta creator";
  who.textContent = creator.display_name || creator.username || "";
  const meta = document.createElement("span");
  meta.className = "meta";
  const viewers = stream.viewers ?? 0;
  meta.textContent = [`${numbers.format(viewers)} watching`, startedAgo(stream.started_at)].filter(Boolean).join(" · ");
  link.append(thumb, title, who, meta);
  li.append(link);
  return li;
}

async function refresh() {
  try {
    const { streams } = await api("/api/live");
    // A refresh must not throw away keyboard focus from the card the user is on.
    const focusedId = list.contains(document.activeElement) ? document.activeElement.closest("li").dataset.id : null;
    list.replaceChildren(...streams.map(streamCard));
    if (focusedId !== null) list.querySelector(`li[data-id="${CSS.escape(focusedId)}"] a`)?.focus();
    status.textContent = streams.length
      ? `${streams.length} ${streams.length === 1 ? "stream is" : "streams are"} live.`
      : "Nobody is live right now. Check back soon.";
  } catch (error) {
    status.textContent = `Could not load the live directory: ${error.message}`;
  }
}

refresh();
setInterval(() => {
  if (document.visibilityState === "visible") refresh();
}, REFRESH_MS);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") refresh();
});
