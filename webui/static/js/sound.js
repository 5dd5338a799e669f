// A sound's page (/sound.html?id=<id>): who made it (credited), its licence, a player, the videos that use it and
// "Use this sound", which opens the editor with it.

import { ApiError, api } from "./api.js";
import { VideoPages, videoTile } from "./videogrid.js";

const $ = (id) => document.getElementById(id);
const id = new URLSearchParams(location.search).get("id") || "";
const PAGE = 12;

function fail(error) {
  $("page-banner").textContent = error instanceof ApiError ? error.detail : String(error);
  $("page-banner").hidden = false;
  $("videos-status").hidden = true;
  $("sound-videos-heading").parentElement.hidden = true; // no videos to list either
}

function showSound(sound) {
  document.title = `${sound.title} · ${sound.artist} · livecore`;
  $("sound-title").textContent = sound.title;
  $("sound-artist").textContent = sound.artist;
  $("sound-licence").textContent = sound.licence;
  $("sound-duration").textContent = `${(sound.duration_ms / 1000).toFixed(1)} s`;
  $("sound-uses").textContent = `${sound.uses} ${sound.uses === 1 ? "video" : "videos"}`;
  $("sound-uploader").textContent = sound.uploader ? `@${sound.uploader.username}` : "livecore";
  $("sound-audio").src = sound.audio_url;
  $("use-sound").href = `/editor.html?sound=${sound.id}`;
  $("sound").dataset.soundId = sound.id;
  $("sound").hidden = false;
}

const pages = new VideoPages({
  list: $("videos"), more: $("videos-more"), status: $("videos-status"), empty: "No video uses this sound yet.",
  load: (offset) => api(`/api/sounds/${encodeURIComponent(id)}?limit=${PAGE}&offset=${offset}`),
  tile: (video) => videoTile(video),
});

if (!/^\d+$/.test(id)) {
  fail("No sound chosen: open one from a video or from the editor's sound library.");
} else {
  try {
    const sound = await api(`/api/sounds/${encodeURIComponent(id)}?limit=${PAGE}`);
    showSound(sound);
    pages.show(sound);
  } catch (error) {
    fail(error);
  }
}
