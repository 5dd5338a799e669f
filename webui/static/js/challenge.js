// A challenge's page (/challenge.html?id=<id>): what to do, its sound, its videos ranked by the engagement they
// drew, and "Join", which opens the editor with its hashtag, sound and template.

import { ApiError, api } from "./api.js";
import { VideoPages, videoTile } from "./videogrid.js";

const $ = (id) => document.getElementById(id);
const id = new URLSearchParams(location.search).get("id") || "";
const PAGE = 12;

function fail(error) {
  $("page-banner").textContent = error instanceof ApiError ? error.detail : String(error);
  $("page-banner").hidden = false;
  $("videos-status").hidden = true;
  $("ranked-heading").parentElement.hidden = true; // no videos to list either
}

function showChallenge(challenge) {
  document.title = `#${challenge.hashtag} · livecore`;
  $("challenge-hashtag").textContent = `#${challenge.hashtag}`;
  $("challenge-description").textContent = challenge.description;
  $("challenge-creator").textContent = `@${challenge.creator.username}`;
  $("challenge-count").textContent = `${challenge.video_count} ${challenge.video_count === 1 ? "video" : "videos"}`;
  if (challenge.trending_rank) {
    $("challenge-trending").textContent = `Trending #${challenge.trending_rank}`;
    $("challenge-trending").hidden = false;
  }
  if (challenge.sound) {
    $("challenge-sound").textContent = challenge.sound.title;
    $("challenge-sound").href = `/sound.html?id=${challenge.sound.id}`;
    $("challenge-artist").textContent = challenge.sound.artist;
    $("challenge-audio").src = challenge.sound.audio_url;
  }
  $("join-challenge").href = `/editor.html?challenge=${challenge.id}`;
  $("challenge").dataset.challengeId = challenge.id;
  $("challenge").hidden = false;
}

function rankedTile(video, index) {
  const rank = document.createElement("span");
  rank.className = "rank";
  rank.textContent = `#${index + 1}`;
  const tile = videoTile(video, rank);
  tile.dataset.score = video.score;
  return tile;
}

const pages = new VideoPages({
  list: $("videos"), more: $("videos-more"), status: $("videos-status"),
  empty: "No video has joined yet: be the first.",
  load: (offset) => api(`/api/challenges/${encodeURIComponent(id)}?limit=${PAGE}&offset=${offset}`),
  tile: rankedTile,
});

if (!/^\d+$/.test(id)) {
  fail("No challenge chosen: pick one from Challenges.");
} else {
  try {
    const challenge = await api(`/api/challenges/${encodeURIComponent(id)}?limit=${PAGE}`);
    showChallenge(challenge);
    pages.show(challenge);
  } catch (error) {
    fail(error);
  }
}
