// WHIP and WHEP signalling shared by the studio (publish) and the watch page (play): one SDP offer POSTed,
// one SDP answer back, the session's Location kept for DELETE. Candidates go in the offer (no trickle), which
// on a LAN or loopback costs only the time ICE gathering takes.

export const ICE_GATHERING_MAX_MS = 2_000;

/** An HTTP failure of a WHIP/WHEP request, with the server's problem+json body when there is one. */
export class SignallingError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `the server answered HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

function gatheringComplete(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ICE_GATHERING_MAX_MS);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === "complete") done();
    }
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/**
 * Offer `pc`'s transceivers to `url` and apply the answer; resolves to the session URL (for DELETE).
 * Rejects with SignallingError for an HTTP refusal, TypeError when the server cannot be reached.
 */
export async function negotiate(pc, url, { bearer = null } = {}) {
  await pc.setLocalDescription(await pc.createOffer());
  await gatheringComplete(pc);
  const headers = { "Content-Type": "application/sdp", Accept: "application/sdp, application/problem+json" };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const response = await fetch(url, { method: "POST", headers, body: pc.localDescription.sdp,
    credentials: "same-origin" });
  const text = await response.text();
  if (response.status !== 201) {
    let problem = {};
    try {
      problem = JSON.parse(text);
    } catch {
      problem = {};
    }
    throw new SignallingError(response.status, problem && typeof problem === "object" ? problem : {});
  }
  await pc.setRemoteDescription({ type: "answer", sdp: text });
  return new URL(response.headers.get("Location") || url, location.href).href;
}

/**
 * DELETE a WHIP/WHEP session (a WHIP session needs the stream key as `bearer`); best effort, since the server also
 * notices a peer that went away.
 */
export async function endSession(sessionUrl, { keepalive = false, bearer = null } = {}) {
  if (!sessionUrl) return;
  const headers = bearer ? { Authorization: `Bearer ${bearer}` } : {};
  try {
    await fetch(sessionUrl, { method: "DELETE", headers, credentials: "same-origin", keepalive });
  } catch {
    // The server closes sessions whose peer stops answering.
  }
}

/** Put `preferred` codecs (e.g. "video/H264") first on a transceiver, when the browser lets us choose. */
export function preferCodec(transceiver, kind, preferred) {
  if (!transceiver.setCodecPreferences || !RTCRtpSender.getCapabilities) return;
  const codecs = RTCRtpSender.getCapabilities(kind)?.codecs ?? [];
  const wanted = preferred.toLowerCase();
  const first = codecs.filter((codec) => codec.mimeType.toLowerCase() === wanted);
  if (first.length === 0) return;
  transceiver.setCodecPreferences([...first, ...codecs.filter((codec) => codec.mimeType.toLowerCase() !== wanted)]);
}
