// The watch page's video: WebRTC over WHEP first; when the server answers 503 (the room or node is full of
// WebRTC viewers) the HLS URL from its problem+json, played natively or with the vendored hls.js; reconnects with
// backoff when the network drops, and says so when the stream is not live. No DOM outside the video box.
//
// Failing over: a session whose packets stop (its node died, or the path to it broke) is noticed from the peer
// connection's own counters within STALL_MS, long before ICE gives up, and a new session is negotiated at once
// with the room (behind a load balancer, on a node that is alive); the old session's DELETE is sent but never
// waited for.

import { api } from "./api.js";
import { backoffDelayMs } from "./room.js";
import { SignallingError, endSession, negotiate } from "./webrtc.js";

// import() resolves this against this module's URL, so it follows wherever the assets are served from.
const HLS_MODULE = "../vendor/hls.light.min.mjs";
const SOUND_OFF_ICON = new URL("../icons/sound-off.svg", import.meta.url).href;
const SOUND_ON_ICON = new URL("../icons/sound-on.svg", import.meta.url).href;
// A stream that is not live yet is asked about again at most this often.
const NOT_LIVE_RETRY_MAX_MS = 5_000;
// "disconnected" often heals by itself (a Wi-Fi hiccup); only a longer one is treated as lost.
const DISCONNECTED_GRACE_MS = 4_000;
// A flowing session gets about 50 audio packets a second and tens of video packets: a second with none at all
// means its server or the path to it is gone.
const STALL_MS = 1_000;
// Before its first packet a session may still be connecting (a TURN relay, a slow network): it gets longer.
const FIRST_PACKET_MS_MAX = 8_000;
const FLOW_CHECK_MS = 250;

export class Player {
  constructor(streamId, { video, placeholder }) {
    this.streamId = String(streamId);
    this.video = video;
    this.placeholder = placeholder;
    this.pc = null;
    this.hls = null;
    this.sessionUrl = null;
    this.mode = "idle"; // "webrtc", "hls", "ended" or "idle"
    this.attempt = 0;
    this.retryTimer = null;
    this.graceTimer = null;
    this.flowTimer = null;
    this.flow = { packets: 0, at: 0, started: false }; // the session's packets at the last check that saw more
    this.stopped = false;
    this.failovers = 0; // sessions given up because their packets stopped (read by tests)
    this.unmute = this.muteButton();
    video.muted = true;
    video.autoplay = true;
    video.addEventListener("playing", () => this.setMessage(""));
  }

  muteButton() {
    const controls = document.createElement("div");
    controls.className = "player-controls";
    const button = document.createElement("button");
    button.type = "button";
    button.id = "unmute-button";
    const icon = document.createElement("img");
    icon.className = "control-icon";
    icon.alt = ""; // the button's text says it
    const text = document.createElement("span");
    button.append(icon, text);
    const label = () => {
      icon.src = this.video.muted ? SOUND_OFF_ICON : SOUND_ON_ICON;
      text.textContent = this.video.muted ? "Unmute" : "Mute";
      button.setAttribute("aria-pressed", String(!this.video.muted));
    };
    button.addEventListener("click", () => {
      this.video.muted = !this.video.muted;
      label();
      this.video.play().catch(() => {});
    });
    label();
    controls.append(button);
    this.video.parentElement.append(controls);
    return button;
  }

  setMessage(text, link = null) {
    const p = document.createElement("p");
    p.textContent = text;
    if (link) {
      const a = document.createElement("a");
      a.href = link;
      a.textContent = link;
      p.append(" ", a);
    }
    this.placeholder.replaceChildren(p);
    this.placeholder.hidden = !text;
    this.placeholder.dataset.state = this.mode;
  }

  start() {
    window.addEventListener("online", () => this.reconnectNow());
    window.addEventListener("pagehide", () => endSession(this.sessionUrl, { keepalive: true }));
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.teardown();
  }

  reconnectNow() {
    if (this.stopped || this.mode === "ended" || this.mode === "webrtc") return;
    this.attempt = 0;
    this.connect();
  }

  teardown() {
    clearTimeout(this.graceTimer);
    clearInterval(this.flowTimer);
    this.flowTimer = null;
    endSession(this.sessionUrl);
    this.sessionUrl = null;
    this.pc?.close();
    this.pc = null;
    this.hls?.destroy();
    this.hls = null;
  }

  async connect() {
    clearTimeout(this.retryTimer);
    this.teardown();
    if (this.stopped) return;
    this.mode = "idle";
    this.setMessage(this.attempt ? "Reconnecting…" : "Connecting to the stream…");
    const pc = new RTCPeerConnection();
    this.pc = pc;
    const media = new MediaStream();
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.addEventListener("track", (event) => {
      media.addTrack(event.track);
      this.video.srcObject = media;
      this.video.play().catch(() => {});
    });
    pc.addEventListener("connectionstatechange", () => this.onConnectionState(pc));
    try {
      const sessionUrl = await negotiate(pc, `/whep/${encodeURIComponent(this.streamId)}`);
      if (this.pc !== pc) {
        endSession(sessionUrl);
      } else {
        this.sessionUrl = sessionUrl;
        this.mode = "webrtc";
        this.watchFlow(pc);
      }
    } catch (error) {
      if (this.pc === pc) await this.onRefused(error);
    }
  }

  /** Check the session's received packets every FLOW_CHECK_MS; fail over when they stop. */
  watchFlow(pc) {
    clearInterval(this.flowTimer);
    this.flow = { packets: 0, at: performance.now(), started: false };
    this.flowTimer = setInterval(() => this.checkFlow(pc), FLOW_CHECK_MS);
  }

  async checkFlow(pc) {
    let packets = 0;
    try {
      (await pc.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp") packets += s.packetsReceived || 0;
      });
    } catch {
      return; // closed meanwhile
    }
    if (this.pc !== pc || this.mode !== "webrtc") return;
    const now = performance.now();
    if (packets > this.flow.packets) {
      this.flow = { packets, at: now, started: true };
      this.attempt = 0; // media flows: the next failure starts the backoff over
      return;
    }
    const waitedMs = now - this.flow.at;
    if (waitedMs >= (this.flow.started ? STALL_MS : FIRST_PACKET_MS_MAX)) {
      this.failovers += 1;
      // The first try goes at once: the room is most likely live on another node. Later ones back off.
      this.retryLater(this.flow.started ? "The video stopped." : "No video arrived.",
        this.attempt === 0 ? 0 : Infinity);
    }
  }

  onConnectionState(pc) {
    if (this.pc !== pc) return;
    const state = pc.connectionState;
    clearTimeout(this.graceTimer);
    if (state === "failed" || state === "closed") {
      this.retryLater("The connection was lost.");
    } else if (state === "disconnected") {
      this.graceTimer = setTimeout(() => this.retryLater("The connection was lost."), DISCONNECTED_GRACE_MS);
    }
  }

  async onRefused(error) {
    if (error instanceof SignallingError && error.status === 503 && error.problem.hls_url) {
      await this.playHls(error.problem.hls_url);
    } else if (error instanceof SignallingError && error.status === 404) {
      await this.notLive();
    } else {
      this.retryLater(`Cannot reach the stream (${error.message}).`);
    }
  }

  async notLive() {
    let state = "";
    try {
      state = (await api(`/api/streams/${encodeURIComponent(this.streamId)}`)).state;
    } catch {
      state = "";
    }
    if (state === "ended") {
      this.teardown();
      this.mode = "ended";
      this.setMessage("This stream has ended.");
      return;
    }
    this.retryLater("The stream is not live yet; waiting for it to start…", NOT_LIVE_RETRY_MAX_MS);
  }

  retryLater(message, delayMaxMs = Infinity) {
    this.teardown();
    if (this.stopped || this.mode === "ended") return;
    this.mode = "idle";
    const delayMs = Math.min(backoffDelayMs(this.attempt), delayMaxMs);
    this.attempt += 1;
    this.setMessage(delayMs === 0 ? `${message} Reconnecting…`
      : `${message} Trying again in ${Math.max(1, Math.round(delayMs / 1000))} s.`);
    this.retryTimer = setTimeout(() => this.connect(), delayMs);
  }

  async playHls(url) {
    this.teardown();
    this.mode = "hls";
    this.video.srcObject = null;
    this.setMessage("This room is full for WebRTC; loading the HLS stream…");
    let Hls = null;
    try {
      Hls = (await import(HLS_MODULE)).default;
    } catch {
      Hls = null;
    }
    if (this.hls !== null || this.mode !== "hls") return; // stopped or replaced while the module loaded
    // hls.js over Media Source first: a browser's own HLS (Safari's, iOS's) is the fallback, since some that
    // claim it ("maybe") play live MPEG-TS playlists poorly.
    if ((!Hls || !Hls.isSupported()) && this.video.canPlayType("application/vnd.apple.mpegurl")) {
      this.video.src = url;
      this.video.play().catch(() => {});
      return;
    }
    if (!Hls || !Hls.isSupported()) {
      this.setMessage("This browser cannot play HLS here. Open the stream in an HLS player:",
        new URL(url, location.href).href);
      return;
    }
    // No worker: the page's CSP allows scripts from 'self' only, and hls.js would start one from a blob: URL.
    const hls = new Hls({ enableWorker: false, liveSyncDurationCount: 2 });
    this.hls = hls;
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (data.fatal && this.hls === hls) this.retryLater("The HLS stream stopped.");
    });
    hls.loadSource(url);
    hls.attachMedia(this.video);
    this.video.play().catch(() => {});
  }
}

/** Start the player for a stream in the watch page's video box; tests find it as window.livecorePlayer. */
export function startPlayer(streamId, elements) {
  const player = new Player(streamId, elements);
  window.livecorePlayer = player;
  player.start();
  return player;
}
