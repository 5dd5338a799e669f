// The studio: a creator previews camera and microphone, goes live over WHIP, sees the viewer count, the room's
// chat, gifts as they arrive and the top gifters, and ends the stream. What users typed goes on the page with
// textContent, never as HTML.

import { ApiError, api, currentUser } from "./api.js";
import { chatLineElement } from "./chatline.js";
import { GiftFeed } from "./giftfeed.js";
import { MerchStudio } from "./merch.js";
import { RoomClient } from "./room.js";
import { RoomShop } from "./roomshop.js";
import { endSession, negotiate, preferCodec } from "./webrtc.js";

const CHAT_LINES_MAX = 250;
const $ = (id) => document.getElementById(id);
const numbers = new Intl.NumberFormat();
const preview = $("preview");
const chatList = $("chat-list");
const giftFeed = new GiftFeed({ feed: $("gift-feed"), leaders: $("top-gifters"), emptyNote: $("leaders-empty") });
const shop = new RoomShop({ onPin: (product) => merch?.showPinned(product), onAuction: () => merch?.renderAuctionForm() });
let merch = null; // the merch panel, for creators

const studio = {
  media: null, // the MediaStream from getUserMedia
  pc: null,
  sessionUrl: null, // the WHIP Location, for DELETE
  streamId: null,
  streamKey: null,
  room: null,
  live: false,
};
window.livecoreStudio = studio; // tests read studio.pc.getStats()

function showBanner(text) {
  const banner = $("page-banner");
  banner.textContent = text;
  banner.hidden = !text;
}

const STATE_TEXT = { idle: "Offline", starting: "Starting…", live: "Live", ended: "Ended", failed: "Connection lost" };

function setPublishState(state) {
  const badge = $("publish-state");
  badge.dataset.state = state;
  badge.textContent = STATE_TEXT[state] ?? state;
  badge.classList.toggle("live", state === "live");
  studio.live = state === "live" || state === "starting";
  $("go-live").disabled = studio.live || !studio.media;
  $("end-stream").disabled = !studio.live;
  $("stream-title-input").disabled = studio.live;
  merch?.setStream(studio.streamId, state === "live");
}

function fillSelect(select, devices, currentId, fallbackLabel) {
  const options = devices.map((device, index) => new Option(device.label || `${fallbackLabel} ${index + 1}`,
    device.deviceId));
  select.replaceChildren(...options);
  if (currentId) select.value = currentId;
}

async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  const settings = (kind) => studio.media?.getTracks().find((t) => t.kind === kind)?.getSettings().deviceId;
  fillSelect($("camera-select"), devices.filter((d) => d.kind === "videoinput"), settings("video"), "Camera");
  fillSelect($("mic-select"), devices.filter((d) => d.kind === "audioinput"), settings("audio"), "Microphone");
}

/** (Re)open the chosen camera and microphone; while live, the new tracks replace the old ones in place. */
async function openDevices() {
  const camera = $("camera-select").value;
  const mic = $("mic-select").value;
  const constraints = {
    video: camera ? { deviceId: { exact: camera } } : { width: { ideal: 1280 }, height: { ideal: 720 } },
    audio: mic ? { deviceId: { exact: mic } } : true,
  };
  let media;
  try {
    media = await navigator.mediaDevices.getUserMedia(constraints);
  } catch (error) {
    showBanner(`Cannot open the camera or microphone: ${error.message}`);
    return;
  }
  const previous = studio.media;
  studio.media = media;
  preview.srcObject = media;
  $("preview-placeholder").hidden = true;
  if (studio.pc) {
    for (const sender of studio.pc.getSenders()) {
      const track = media.getTracks().find((t) => sender.track && t.kind === sender.track.kind);
      if (track) await sender.replaceTrack(track);
    }
  }
  previous?.getTracks().forEach((track) => track.stop());
  showBanner("");
  await listDevices();
  setPublishState($("publish-state").dataset.state);
}

async function streamToPublish() {
  const params = new URLSearchParams(location.search);
  if (params.get("stream") && params.get("key")) return { id: params.get("stream"), stream_key: params.get("key") };
  return api("/api/streams", { method: "POST", body: { title: $("stream-title-input").value.trim() } });
}

async function publish(streamId, streamKey) {
  const pc = new RTCPeerConnection();
  studio.pc = pc;
  for (const track of studio.media.getTracks()) {
    const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [studio.media] });
    // H.264 makes the server's HLS and recording a remux instead of a transcode.
    if (track.kind === "video") preferCodec(transceiver, "video", "video/H264");
  }
  pc.addEventListener("connectionstatechange", () => {
    if (studio.pc !== pc) return;
    if (pc.connectionState === "connected") setPublishState("live");
    if (pc.connectionState === "failed") {
      setPublishState("failed");
      showBanner("The connection to the server was lost; the stream has ended. Go live again to start a new one.");
    }
  });
  studio.sessionUrl = await negotiate(pc, `/whip/${encodeURIComponent(streamId)}`, { bearer: streamKey });
}

async function goLive(submit) {
  submit.preventDefault();
  if (!studio.media) return;
  setPublishState("starting");
  showBanner("");
  try {
    const stream = await streamToPublish();
    studio.streamId = String(stream.id);
    studio.streamKey = stream.stream_key;
    const watch = $("watch-link");
    watch.href = `/watch.html?room=${encodeURIComponent(studio.streamId)}`;
    watch.hidden = false;
    connectRoom(studio.streamId);
    await publish(studio.streamId, studio.streamKey);
  } catch (error) {
    studio.pc?.close();
    studio.pc = null;
    setPublishState("idle");
    showBanner(`Could not go live: ${error.message}`);
  }
}

async function endStream() {
  const { pc, sessionUrl, streamId, streamKey } = studio;
  studio.pc = null;
  studio.sessionUrl = null;
  $("end-stream").disabled = true;
  await endSession(sessionUrl, { bearer: streamKey });
  pc?.close();
  try {
    if (streamId) await api(`/api/streams/${encodeURIComponent(streamId)}/end`, { method: "POST" });
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 409)) showBanner(`Could not end the stream: ${error.message}`);
  }
  setPublishState("ended");
}

function appendLine(li) {
  const stick = chatList.scrollHeight - chatList.scrollTop - chatList.clientHeight < 48;
  chatList.append(li);
  while (chatList.children.length > CHAT_LINES_MAX) chatList.firstElementChild.remove();
  if (stick) chatList.scrollTop = chatList.scrollHeight;
}

function addChat(event) {
  if (chatList.querySelector(`li[data-id="${CSS.escape(String(event.id))}"]`)) return;
  appendLine(chatLineElement(event));
}

function applyRoomEvent(event) {
  switch (event.type) {
    case "snapshot":
      for (const chat of event.recent ?? []) addChat(chat);
      $("viewer-count").textContent = numbers.format(event.viewers ?? 0);
      giftFeed.refreshLeadersSoon(); // a join or a reset does not replay the gifts sent before it
      shop.takeSnapshot(event);
      break;
    case "chat":
      addChat(event);
      break;
    case "viewers":
      $("viewer-count").textContent = numbers.format(event.count);
      break;
    case "stream":
      if (event.state === "ended" && studio.live) {
        studio.pc?.close();
        studio.pc = null;
        setPublishState("ended");
      }
      break;
    default:
      if (!shop.apply(event)) giftFeed.apply(event); // product_pinned, auction; gift, gift_end
      break;
  }
}

function applyRoomStatus(state) {
  const status = $("conn-status");
  status.dataset.state = state;
  status.textContent = { open: "Connected", connecting: "Connecting…", reconnecting: "Reconnecting…" }[state]
    ?? "Disconnected";
  $("chat-input").disabled = state !== "open";
  $("chat-send").disabled = state !== "open";
}

function connectRoom(streamId) {
  studio.room?.close();
  chatList.replaceChildren();
  giftFeed.show(streamId);
  shop.reset();
  $("studio-gifts").hidden = false;
  studio.room = new RoomClient(streamId, { onEvent: applyRoomEvent, onStatus: applyRoomStatus });
  studio.room.connect();
}

function wireChat() {
  $("chat-form").addEventListener("submit", (submit) => {
    submit.preventDefault();
    const input = $("chat-input");
    const text = input.value.trim();
    if (text && studio.room?.send({ type: "chat", text })) input.value = "";
  });
}

async function main() {
  setPublishState("idle");
  const me = await currentUser().catch(() => null); // /api/me unreachable: ask to log in, as signed out
  if (!me) {
    showBanner("Log in with a creator account to go live.");
    return;
  }
  if (me.roles?.includes("creator")) {
    merch = new MerchStudio(me, shop);
    merch.load().catch((error) => showBanner(`Could not load your products: ${error.message}`));
  }
  if (!navigator.mediaDevices?.getUserMedia || !window.RTCPeerConnection) {
    showBanner("This browser cannot publish video (it lacks getUserMedia or WebRTC).");
    return;
  }
  $("studio-form").addEventListener("submit", goLive);
  $("end-stream").addEventListener("click", endStream);
  $("camera-select").addEventListener("change", openDevices);
  $("mic-select").addEventListener("change", openDevices);
  wireChat();
  window.addEventListener("pagehide",
    () => endSession(studio.sessionUrl, { keepalive: true, bearer: studio.streamKey }));
  if (new URLSearchParams(location.search).get("stream")) $("stream-title-input").required = false;
  await openDevices();
}

main();
