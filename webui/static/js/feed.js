// The feed page: For You and Following, one card at a time; swipe, wheel or keys to move; videos autoplay muted.
// What the viewer does is sent as engagement events, which is how For You learns what to show next.

import { api } from "./api.js";
import { AdEvents } from "./adevents.js";
import { Engagement } from "./engagement.js";

const PREFETCH_LEFT = 3; // load the next page when this few cards are left
const PAGE_LIMIT = 10;
const WHEEL_QUIET_MS = 450; // one wheel gesture moves one card
const SWIPE_MIN_PX = 40;

const feed = document.getElementById("feed");
const status = document.getElementById("feed-status");
const tabs = [...document.querySelectorAll('[role="tab"]')];
const engagement = new Engagement();
const adEvents = new AdEvents();
const linkedId = Number(new URLSearchParams(location.search).get("video")) || null; // ?video=<id>: shown first
// `waiting`: the viewer asked for the next card before it had loaded; it is shown as soon as its page comes.
const state = { name: "for-you", cards: [], index: -1, cursor: null, loading: false, done: false, waiting: false,
  shownAt: 0, soundOn: false, generation: 0 };
const END_TEXT = {
  "for-you": "You have seen everything for now: new videos come as creators post them.",
  following: "That is everything from the creators you follow.",
};

function setStatus(text) {
  status.textContent = text;
  status.hidden = !text;
}

async function loadMore() {
  if (state.loading || state.done) return;
  state.loading = true;
  const generation = state.generation;
  const query = new URLSearchParams({ limit: String(PAGE_LIMIT) });
  if (state.cursor) query.set("cursor", state.cursor);
  let page;
  try {
    page = await api(`/api/feed/${state.name}?${query}`);
  } catch (error) {
    if (generation !== state.generation) return;
    state.loading = false;
    setStatus(error.detail); // the next swipe past the end tries again
    return;
  }
  if (generation !== state.generation) return;
  state.loading = false; // before showing a card, which may ask for the page after this one
  for (const item of page.items) {
    if (item.kind !== "video" || item.video.id !== linkedId) state.cards.push(renderItem(item));
  }
  state.cursor = page.next_cursor;
  state.done = !page.next_cursor;
  if (state.index < 0 && state.cards.length) show(0);
  else if (state.waiting) next();
  if (!state.cards.length) setStatus(state.name === "following" ? "Nothing here yet: follow creators to see their videos." : "Nothing to show yet.");
}

/** The video a link (the editor's, a sound's or a challenge's page) points at, as the first card. */
async function loadLinked() {
  try {
    const video = await api(`/api/videos/${linkedId}`);
    if (video.state === "ready" && state.index < 0) {
      state.cards.push(renderItem({ kind: "video", video, source: "link", liked: false }));
      show(0);
    }
  } catch {
    // A link to a video that is gone: the feed as it comes.
  }
}

function renderItem(item) {
  const render = { live: renderLive, ad: renderAd }[item.kind] || renderVideo;
  const card = render(item);
  feed.append(card.element);
  return card;
}

function renderVideo(item) {
  const video = item.video;
  const element = document.getElementById("video-card").content.firstElementChild.cloneNode(true);
  element.dataset.videoId = video.id;
  element.dataset.authorId = video.author.id;
  const player = element.querySelector("video");
  player.src = video.video_url;
  player.poster = video.thumbnail_url || "";
  player.muted = !state.soundOn;
  const author = element.querySelector(".author");
  author.textContent = `@${video.author.username}`;
  author.href = `/shop.html?user=${video.author.id}`;
  element.querySelector(".source").textContent = item.source;
  const partnership = element.querySelector(".partnership");
  partnership.textContent = (item.labels ?? []).map((label) => label.text).join(" · ");
  partnership.hidden = !partnership.textContent;
  element.querySelector(".caption").textContent = video.caption;
  element.querySelector(".hashtags").textContent = video.hashtags.map((t) => `#${t}`).join(" ");
  const like = element.querySelector(".like");
  setLiked(like, item.liked, video.likes);
  like.addEventListener("click", () => toggleLike(card));
  element.querySelector(".share").addEventListener("click", () => share(card));
  const followButton = element.querySelector(".follow");
  followButton.addEventListener("click", () => follow(card));
  if (item.following) showFollowing(followButton);
  element.querySelector(".not-interested").addEventListener("click", () => notInterested(card));
  element.querySelector(".sound").addEventListener("click", () => toggleSound());
  const card = { kind: "video", element, video, player, liked: item.liked, likes: video.likes, watchedMs: 0 };
  return card;
}

function renderAd(item) {
  const element = document.getElementById("ad-card").content.firstElementChild.cloneNode(true);
  element.dataset.campaignId = item.campaign_id;
  const player = element.querySelector("video");
  player.src = item.video.video_url;
  player.poster = item.video.thumbnail_url || "";
  player.muted = !state.soundOn;
  element.querySelector(".sponsor").textContent = `Paid for by ${item.sponsor.name}`;
  element.querySelector(".headline").textContent = item.headline;
  const reasons = element.querySelector(".reasons");
  for (const reason of item.reasons) {
    const li = document.createElement("li");
    li.textContent = reason;
    reasons.append(li);
  }
  const link = element.querySelector(".ad-link");
  if (item.landing_url) {
    link.href = item.landing_url;
    link.addEventListener("click", () => adEvents.record(item, "click"));
  } else {
    link.hidden = true;
  }
  element.querySelector(".sound").addEventListener("click", () => toggleSound());
  return { kind: "ad", element, item, player, stopWatching: null };
}

function renderLive(item) {
  const element = document.getElementById("live-card").content.firstElementChild.cloneNode(true);
  element.dataset.streamId = item.stream_id;
  const thumb = element.querySelector(".thumb");
  if (item.thumbnail_url) thumb.src = item.thumbnail_url;
  else thumb.hidden = true;
  element.querySelector(".title").textContent = item.title;
  element.querySelector(".creator").textContent = `@${item.creator.username}`;
  element.querySelector(".viewers").textContent = `${item.viewers} watching`;
  element.querySelector(".watch").href = item.watch_url;
  return { kind: "live", element };
}

function setLiked(button, liked, likes) {
  button.setAttribute("aria-pressed", String(liked));
  button.querySelector(".label").textContent = liked ? "Liked" : "Like";
  button.querySelector(".likes").textContent = String(likes);
}

function show(index) {
  if (index < 0 || index >= state.cards.length || index === state.index) return;
  leave(state.cards[state.index]);
  state.index = index;
  state.waiting = false;
  const card = state.cards[index];
  card.element.classList.add("current");
  setStatus("");
  state.shownAt = performance.now();
  if (card.kind === "video") {
    card.player.muted = !state.soundOn;
    card.player.play().catch(() => {}); // a browser that refuses autoplay shows the poster and its controls
    engagement.record(card.video.id, "seen");
  } else if (card.kind === "ad") {
    card.player.muted = !state.soundOn;
    card.player.play().catch(() => {});
    adEvents.record(card.item, "impression");
    card.stopWatching = adEvents.watch(card.item, card.player);
  }
  if (state.cards.length - index <= PREFETCH_LEFT) loadMore();
}

function leave(card) {
  if (!card) return;
  card.element.classList.remove("current");
  if (card.kind === "ad") {
    card.player.pause();
    card.stopWatching?.();
    card.stopWatching = null;
  }
  if (card.kind !== "video") return;
  card.player.pause();
  const watchMs = Math.round(performance.now() - state.shownAt);
  engagement.record(card.video.id, "watch", { watch_ms: watchMs });
}

async function toggleLike(card) {
  card.liked = !card.liked;
  card.likes += card.liked ? 1 : -1;
  const button = card.element.querySelector(".like");
  setLiked(button, card.liked, card.likes);
  await engagement.record(card.video.id, card.liked ? "like" : "unlike", {}, true);
  try {
    const fresh = await api(`/api/videos/${card.video.id}`);
    card.likes = fresh.likes;
    setLiked(button, card.liked, card.likes);
  } catch {
    // The count shown stays the page's own until the next load.
  }
}

async function share(card) {
  const url = new URL(card.video.video_url, location.origin).href;
  try {
    await navigator.clipboard.writeText(url);
    card.element.querySelector(".share").textContent = "Link copied";
  } catch {
    card.element.querySelector(".share").textContent = "Shared";
  }
  engagement.record(card.video.id, "share", {}, true);
}

function showFollowing(button) {
  button.textContent = "Following";
  button.disabled = true;
}

async function follow(card) {
  const button = card.element.querySelector(".follow");
  button.disabled = true;
  try {
    await api(`/api/users/${card.video.author.id}/follow`, { method: "POST" });
    for (const c of state.cards) {
      if (c.kind === "video" && c.video.author.id === card.video.author.id) showFollowing(c.element.querySelector(".follow"));
    }
    engagement.record(card.video.id, "follow");
  } catch (error) {
    button.disabled = false;
    setStatus(error.detail);
  }
}

function notInterested(card) {
  engagement.record(card.video.id, "not_interested", {}, true);
  const author = card.video.author.id;
  const keep = state.cards.filter((c, i) => i <= state.index || c.kind !== "video" || c.video.author.id !== author);
  for (const c of state.cards) if (!keep.includes(c)) c.element.remove();
  state.cards = keep;
  next();
}

function toggleSound() {
  state.soundOn = !state.soundOn;
  for (const card of state.cards) {
    if (!card.player) continue;
    card.player.muted = !state.soundOn;
    const button = card.element.querySelector(".sound");
    button.textContent = state.soundOn ? "Sound on" : "Sound off";
    button.setAttribute("aria-pressed", String(state.soundOn));
  }
}

function switchTo(name) {
  if (name === state.name && state.cards.length) return;
  leave(state.cards[state.index]);
  state.generation += 1;
  for (const card of state.cards) card.element.remove();
  Object.assign(state, { name, cards: [], index: -1, cursor: null, loading: false, done: false, waiting: false });
  for (const tab of tabs) tab.setAttribute("aria-selected", String(tab.dataset.feed === name));
  setStatus("Loading…");
  loadMore();
}

/** The next card; past the last one loaded, the next page's first card as soon as it comes (a swipe while it is
 * loading is not lost, and a swipe after a failed load tries again), or word that there is no more. */
function next() {
  if (state.index + 1 < state.cards.length) show(state.index + 1);
  else if (state.done) {
    if (state.cards.length) setStatus(END_TEXT[state.name]);
  } else {
    state.waiting = true;
    loadMore();
  }
}

function previous() { show(state.index - 1); }

if (feed) {
  for (const tab of tabs) tab.addEventListener("click", () => switchTo(tab.dataset.feed));
  let wheelQuietUntil = 0;
  feed.addEventListener("wheel", (event) => {
    event.preventDefault();
    const now = performance.now();
    if (now < wheelQuietUntil || Math.abs(event.deltaY) < 1) return;
    wheelQuietUntil = now + WHEEL_QUIET_MS;
    if (event.deltaY > 0) next(); else previous();
  }, { passive: false });
  let touchY = null;
  feed.addEventListener("touchstart", (event) => { touchY = event.touches[0].clientY; }, { passive: true });
  feed.addEventListener("touchend", (event) => {
    if (touchY === null) return;
    const dy = touchY - event.changedTouches[0].clientY;
    touchY = null;
    if (Math.abs(dy) >= SWIPE_MIN_PX) { if (dy > 0) next(); else previous(); }
  });
  document.addEventListener("keydown", (event) => {
    if (event.target.closest?.("input, textarea, select")) return;
    const card = state.cards[state.index];
    if (["ArrowDown", "j", "PageDown"].includes(event.key)) { event.preventDefault(); next(); }
    else if (["ArrowUp", "k", "PageUp"].includes(event.key)) { event.preventDefault(); previous(); }
    else if (event.key === "l" && card?.kind === "video") toggleLike(card);
    else if (event.key === "m") toggleSound();
  });
  if (linkedId) loadLinked().finally(loadMore);
  else loadMore();
}
