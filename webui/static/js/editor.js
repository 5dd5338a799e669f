// The editor page (/editor.html; ?sound=<id> starts with a sound, ?challenge=<id> joins a challenge): clips uploaded
// and trimmed on a timeline, a sound from the library, texts and stickers, a preview in the page, then the render
// (POST /api/edits) followed with a progress bar until the video is in the feed.

import { ApiError, api } from "./api.js";
import { Preview } from "./preview.js";
import { SoundPicker } from "./soundpicker.js";
import { Timeline, seconds } from "./timeline.js";

const RENDER_POLL_MS = 700;
const TEXT_PLACES = { top: 120, middle: 600, bottom: 1040 }; // y on the 720x1280 frame
const TEXT_X = 40;
const TEXT_SIZE_PX = 56;
const STICKER_PLACE = { x: 440, y: 160, width_px: 240 };

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = { overlays: [], challenge: null, musicStartMs: 0, slots: [], editId: null, polling: 0 };

function banner(text) {
  $("page-banner").textContent = text;
  $("page-banner").hidden = !text;
}

function problemText(error) {
  return error instanceof ApiError ? error.detail : String(error);
}

let preview, timeline, picker; // made by main(), on the page of a signed-in account

function changed() {
  $("edit-length").textContent = seconds(timeline.totalMs());
  $("render").disabled = !timeline.clips.length || state.polling !== 0;
  preview.update(timeline.clips, state.overlays);
  renderOverlayList();
}

async function addClips(files) {
  for (const file of files) {
    $("clips-status").textContent = `Uploading ${file.name}…`;
    const form = new FormData();
    form.append("file", file);
    try {
      const clip = await api("/api/edits/clips", { method: "POST", form });
      const slot = state.slots[timeline.clips.length] || {};
      const outMs = slot.duration_ms ? Math.min(clip.duration_ms, slot.duration_ms) : clip.duration_ms;
      timeline.add({ clipId: clip.clip_id, name: file.name, durationMs: clip.duration_ms, inMs: 0, outMs,
        speed: slot.speed || 1, url: URL.createObjectURL(file) });
      $("clips-status").textContent = `${timeline.clips.length} clip(s): drag the handles to trim.`;
    } catch (error) {
      $("clips-status").textContent = `${file.name}: ${problemText(error)}`;
    }
  }
}

function addText(text, place, colour, extra = {}) {
  state.overlays.push({ kind: "text", text, x: TEXT_X, y: TEXT_PLACES[place] ?? TEXT_PLACES.bottom,
    size_px: TEXT_SIZE_PX, colour, ...extra });
  changed();
}

async function addSticker(file) {
  const form = new FormData();
  form.append("file", file);
  try {
    const sticker = await api("/api/edits/stickers", { method: "POST", form });
    state.overlays.push({ kind: "sticker", stickerId: sticker.sticker_id, name: file.name,
      url: URL.createObjectURL(file), ...STICKER_PLACE });
    changed();
  } catch (error) {
    banner(`${file.name}: ${problemText(error)}`);
  }
}

function renderOverlayList() {
  $("overlays").replaceChildren(...state.overlays.map((item, index) => {
    const li = document.createElement("li");
    li.className = "overlay-item";
    li.textContent = item.kind === "text" ? `Text: “${item.text}”` : `Sticker: ${item.name}`;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "Remove";
    remove.addEventListener("click", () => {
      state.overlays.splice(index, 1);
      changed();
    });
    li.append(" ", remove);
    return li;
  }));
}

/** The edit decision list POST /api/edits takes, from what the page holds. */
function decisions() {
  const hashtags = $("hashtags").value.split(/[\s,]+/).filter(Boolean);
  const edit = {
    clips: timeline.clips.map((clip) => ({ clip_id: clip.clipId, in_ms: clip.inMs, out_ms: clip.outMs,
      speed: clip.speed })),
    texts: state.overlays.filter((o) => o.kind === "text").map(({ text, x, y, size_px, colour }) => ({
      text, x, y, size_px, colour })),
    stickers: state.overlays.filter((o) => o.kind === "sticker").map(({ stickerId, x, y, width_px }) => ({
      sticker_id: stickerId, x, y, width_px })),
    caption: $("caption").value,
    hashtags,
  };
  if (picker.sound) {
    edit.music = { sound_id: picker.sound.id, volume: Number($("music-volume").value),
      start_ms: state.musicStartMs };
  }
  if (state.challenge) edit.challenge_id = state.challenge.id;
  return edit;
}

async function render() {
  banner("");
  $("render-result").textContent = "";
  $("render").disabled = true;
  try {
    const edit = await api("/api/edits", { method: "POST", body: decisions() });
    state.editId = edit.id;
    $("render-state").hidden = false;
    showProgress(edit.state, 0);
    state.polling = setTimeout(poll, RENDER_POLL_MS);
  } catch (error) {
    banner(problemText(error));
    $("render").disabled = false;
  }
}

function showProgress(editState, progress) {
  $("render-progress").value = progress;
  $("render-percent").textContent = `${Math.round(progress * 100)}%`;
  $("render-state").dataset.state = editState;
}

async function poll() {
  let edit;
  try {
    edit = await api(`/api/edits/${state.editId}`);
  } catch (error) {
    $("render-result").textContent = `${problemText(error)} Still trying…`;
    state.polling = setTimeout(poll, RENDER_POLL_MS * 3);
    return;
  }
  showProgress(edit.state, edit.progress);
  if (edit.state === "queued" || edit.state === "rendering") {
    $("render-result").textContent = edit.state === "queued" ? "Waiting for a renderer…" : "";
    state.polling = setTimeout(poll, RENDER_POLL_MS);
    return;
  }
  finished(edit);
}

function finished(edit) {
  state.polling = 0;
  $("cancel-render").hidden = true;
  const result = $("render-result");
  result.replaceChildren();
  if (edit.state === "done" && edit.video_id) {
    showProgress("done", 1);
    const link = document.createElement("a");
    link.id = "video-link";
    link.className = "button primary";
    link.href = `/feed.html?video=${edit.video_id}`;
    link.textContent = "Watch it in the feed";
    result.append("Posted. ", link);
  } else {
    result.textContent = edit.state === "cancelled" ? "Render cancelled." : `The render failed: ${edit.error || ""}`;
    $("render").disabled = false;
  }
}

async function cancel() {
  clearTimeout(state.polling);
  try {
    finished(await api(`/api/edits/${state.editId}`, { method: "DELETE" }));
  } catch (error) {
    $("render-result").textContent = problemText(error);
    state.polling = setTimeout(poll, RENDER_POLL_MS);
  }
}

async function uploadSound(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  $("sound-form-result").textContent = "Checking the sound…";
  try {
    const sound = await api("/api/sounds", { method: "POST", form });
    $("sound-form-result").textContent = `Added “${sound.title}”.`;
    event.target.reset();
    picker.choose(sound);
  } catch (error) {
    $("sound-form-result").textContent = problemText(error);
  }
}

/** ?challenge=<id>: its sound, its hashtag and its template; ?sound=<id>: that sound. */
async function prefill() {
  const challengeId = params.get("challenge");
  const soundId = params.get("sound");
  try {
    if (challengeId) {
      const challenge = await api(`/api/challenges/${encodeURIComponent(challengeId)}`);
      state.challenge = challenge;
      const link = $("challenge-link");
      link.textContent = `#${challenge.hashtag}`;
      link.href = `/challenge.html?id=${challenge.id}`;
      $("challenge-banner").hidden = false;
      $("hashtags").value = `#${challenge.hashtag}`;
      const template = challenge.template || {};
      state.slots = template.clips || [];
      if (template.caption) $("caption").value = template.caption;
      for (const tag of template.hashtags || []) $("hashtags").value += ` #${tag.replace(/^#/, "")}`;
      for (const text of template.texts || []) {
        state.overlays.push({ kind: "text", size_px: TEXT_SIZE_PX, colour: "#ffffff", x: TEXT_X,
          y: TEXT_PLACES.bottom, ...text });
      }
      if (template.music) {
        state.musicStartMs = template.music.start_ms || 0;
        if (template.music.volume !== undefined) $("music-volume").value = String(template.music.volume);
      }
      if (challenge.sound) picker.choose(challenge.sound);
    } else if (soundId) {
      picker.choose(await api(`/api/sounds/${encodeURIComponent(soundId)}`));
    }
  } catch (error) {
    banner(problemText(error));
  }
  changed();
}

async function main() {
  preview = new Preview({ video: $("preview-video"), overlays: $("preview-overlays"), play: $("preview-play"),
    time: $("preview-time"), music: $("sound-preview") });
  timeline = new Timeline($("timeline"), $("clip-row"), changed);
  picker = new SoundPicker({ search: $("sound-search"), results: $("sound-results"), chosen: $("chosen-sound"),
    clear: $("clear-sound"), preview: $("sound-preview"), onChoose: changed });
  $("clip-files").addEventListener("change", async (event) => {
    await addClips([...event.target.files]);
    event.target.value = "";
  });
  $("text-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("text-input").value.trim();
    if (!text) return;
    addText(text, $("text-place").value, $("text-colour").value);
    $("text-input").value = "";
  });
  $("sticker-file").addEventListener("change", async (event) => {
    if (event.target.files[0]) await addSticker(event.target.files[0]);
    event.target.value = "";
  });
  $("music-volume").addEventListener("input", () => {
    $("sound-preview").volume = Number($("music-volume").value);
  });
  $("render").addEventListener("click", render);
  $("cancel-render").addEventListener("click", cancel);
  $("sound-form")?.addEventListener("submit", uploadSound);
  await Promise.all([prefill(), picker.find().catch((error) => banner(problemText(error)))]);
}

if ($("timeline")) await main();
