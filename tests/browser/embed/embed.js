// A page on another origin than the node, as a developer embedding livecore would write it: it publishes with a
// third-party WHIP client, plays with a third-party WHEP player and with hls.js, all from npm, and reports what
// happened through `window.embed` for the test to read.

import { WHIPClient } from "/vendor/whip-client.mjs";
import { WebRTCPlayer } from "/vendor/webrtc-player.mjs";
import Hls from "/vendor/hls.mjs";

const $ = (id) => document.getElementById(id);

const embed = {
  whip: null,
  player: null,
  hls: null,
  hlsErrors: [],
  times: {}, // milliseconds since the page started, by event
};
window.embed = embed;

function mark(name) {
  embed.times[name] ??= Math.round(performance.now());
}

async function videoFramesDecoded(pc) {
  if (!pc || pc.connectionState === "closed") return 0;
  let frames = 0;
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded || 0;
  });
  return frames;
}

embed.publish = async (endpoint, streamKey) => {
  const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360 }, audio: true });
  $("preview").srcObject = media;
  const client = new WHIPClient({ endpoint, opts: { iceServers: [], authkey: streamKey } });
  embed.whip = client;
  client.peer.addEventListener("connectionstatechange", () => {
    if (client.peer?.connectionState === "connected") mark("whipConnected");
  });
  mark("whipStart");
  await client.ingest(media);
  mark("whipOffered");
  return { trickle: !client.opts.noTrickleIce };
};

embed.publisherState = () => embed.whip?.peer?.connectionState ?? "none";

embed.stopPublishing = async () => {
  await embed.whip.destroy(); // DELETE on the session, with the stream key
};

embed.play = async (whepUrl) => {
  const player = new WebRTCPlayer({ video: $("whep-video"), type: "whep", iceServers: [] });
  embed.player = player;
  mark("whepStart");
  await player.load(new URL(whepUrl));
};

embed.whepFrames = async () => {
  const frames = await videoFramesDecoded(embed.player?.peer);
  if (frames > 0) mark("whepFirstFrame");
  return frames;
};

embed.stopPlaying = async () => {
  await embed.player.unload(); // DELETE on the session
};

embed.playHls = (url) => {
  const hls = new Hls({ liveSyncDurationCount: 2 });
  embed.hls = hls;
  hls.on(Hls.Events.ERROR, (_event, data) => embed.hlsErrors.push(`${data.fatal ? "fatal " : ""}${data.details}`));
  mark("hlsStart");
  hls.loadSource(url);
  hls.attachMedia($("hls-video"));
};

embed.hlsFrames = () => {
  const frames = $("hls-video").getVideoPlaybackQuality().totalVideoFrames;
  if (frames > 0) mark("hlsFirstFrame");
  return frames;
};
