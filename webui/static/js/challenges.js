// The challenges (/challenges.html): trending first, then the newest, searchable; creators start new ones here.

import { ApiError, api } from "./api.js";

const $ = (id) => document.getElementById(id);
const PAGE = 20;
const SEARCH_QUIET_MS = 250;
let offset = 0;
let timer = 0;

function problemText(error) {
  return error instanceof ApiError ? error.detail : String(error);
}

function row(challenge) {
  const li = document.createElement("li");
  li.className = "challenge-row";
  li.dataset.challengeId = challenge.id;
  const link = document.createElement("a");
  link.href = `/challenge.html?id=${challenge.id}`;
  link.className = "challenge-name";
  link.textContent = `#${challenge.hashtag}`;
  const about = document.createElement("p");
  about.textContent = challenge.description;
  const facts = document.createElement("p");
  facts.className = "hint";
  const sound = challenge.sound ? ` · ♪ ${challenge.sound.title} · ${challenge.sound.artist}` : "";
  facts.textContent = `${challenge.video_count} ${challenge.video_count === 1 ? "video" : "videos"}${sound}`;
  li.append(link);
  if (challenge.trending_rank) {
    const badge = document.createElement("span");
    badge.className = "badge live trending";
    badge.textContent = `Trending #${challenge.trending_rank}`;
    li.append(" ", badge);
  }
  li.append(about, facts);
  return li;
}

async function load(reset) {
  if (reset) offset = 0;
  const query = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
  const words = $("challenge-search").value.trim();
  if (words) query.set("q", words);
  try {
    const page = await api(`/api/challenges?${query}`);
    const rows = page.items.map(row);
    if (reset) $("challenges").replaceChildren(...rows);
    else $("challenges").append(...rows);
    offset = page.next_offset ?? offset;
    $("challenges-more").hidden = page.next_offset === null;
    $("challenges-status").textContent = $("challenges").children.length ? "" : "No challenge yet.";
  } catch (error) {
    $("challenges-status").textContent = problemText(error);
  }
}

async function loadSounds() {
  const select = $("new-sound");
  if (!select) return;
  const page = await api("/api/sounds?limit=50");
  select.replaceChildren(...page.items.map((sound) => new Option(`${sound.title} · ${sound.artist}`, sound.id)));
}

async function start(event) {
  event.preventDefault();
  const result = $("challenge-form-result");
  result.textContent = "";
  const body = { hashtag: $("new-hashtag").value.trim(), description: $("new-description").value.trim(),
    sound_id: Number($("new-sound").value) };
  if ($("new-caption").value.trim()) body.template = { caption: $("new-caption").value.trim() };
  try {
    const challenge = await api("/api/challenges", { method: "POST", body });
    location.assign(`/challenge.html?id=${challenge.id}`);
  } catch (error) {
    result.textContent = problemText(error);
  }
}

$("challenge-search").addEventListener("input", () => {
  clearTimeout(timer);
  timer = setTimeout(() => load(true), SEARCH_QUIET_MS);
});
$("challenges-more").addEventListener("click", () => load(false));
$("challenge-form")?.addEventListener("submit", start);
await Promise.all([load(true), loadSounds().catch((error) => {
  $("challenge-form-result").textContent = problemText(error);
})]);
