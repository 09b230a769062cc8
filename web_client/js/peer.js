// The peer connection to the relay: created on `joined`, answering each offer of the server (which
// always offers), and one MediaStream per remote participant for the page. No DOM.

/**
 * @typedef {import("./wire.js").IceServerInfo} IceServerInfo
 * @typedef {import("./wire.js").JoinedMessage} JoinedMessage
 * @typedef {import("./wire.js").OfferMessage} OfferMessage
 * @typedef {import("./wire.js").TrackInfo} TrackInfo
 * @typedef {import("./wire.js").TrackSource} TrackSource
 *
 * @typedef {object} OfferContext what answering an offer needs to know about us
 * @property {string | null} participantId our id: the offer's tracks of ours are the ones we send
 * @property {(source: TrackSource) => MediaStreamTrack | null} localTrack
 * @property {() => boolean} stale the offer is outdated (a new connection, or the call ended)
 *
 * @typedef {object} RemoteTracks receiver tracks by remote participant, one map per kind of feed
 * @property {Map<string, MediaStreamTrack[]>} cameras camera and microphone
 * @property {Map<string, MediaStreamTrack[]>} screens screen and its audio
 *
 * @typedef {object} Answer
 * @property {string} sdp every candidate included (no trickle ICE)
 * @property {RemoteTracks} remote
 */

const ICE_GATHERING_TIMEOUT_MS = 2_000;

/**
 * The server's ice_servers as RTCIceServer objects (null username/credential dropped: WebIDL would
 * turn them into the string "null").
 * @param {IceServerInfo[] | undefined} servers
 * @returns {RTCIceServer[]}
 */
function toIceServers(servers) {
  if (!Array.isArray(servers)) return [];
  return servers.map((server) => {
    /** @type {RTCIceServer} */
    const out = { urls: server.urls };
    if (typeof server.username === "string") out.username = server.username;
    if (typeof server.credential === "string") out.credential = server.credential;
    return out;
  });
}

/**
 * Resolves when ICE gathering is complete, or after `timeoutMs` (whichever comes first).
 * @param {RTCPeerConnection} pc
 * @param {number} timeoutMs
 * @returns {Promise<void>}
 */
function waitForIceGathering(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer = undefined;
    const finish = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", onStateChange);
      pc.removeEventListener("icecandidate", onCandidate);
      resolve();
    };
    const onStateChange = () => {
      if (pc.iceGatheringState === "complete") finish();
    };
    /** @param {RTCPeerConnectionIceEvent} event */
    const onCandidate = (event) => {
      if (!event.candidate) finish();
    };
    pc.addEventListener("icegatheringstatechange", onStateChange);
    pc.addEventListener("icecandidate", onCandidate);
    timer = setTimeout(finish, timeoutMs);
  });
}

/** VP8 temporal layer modes, most layers first (Chromium offers L1T3; some browsers L1T2). */
const TEMPORAL_LAYER_MODES = ["L1T3", "L1T2"];

/**
 * Ask the video encoder for temporal layers, so the relay can send fewer frames to someone on a
 * slow link instead of losing packets (which freezes video). A browser that knows no mode, or
 * refuses it, keeps sending one layer, as before.
 * @param {RTCRtpSender} sender
 * @returns {Promise<void>}
 */
async function requestTemporalLayers(sender) {
  const capabilities = RTCRtpSender.getCapabilities ? RTCRtpSender.getCapabilities("video") : null;
  const vp8 = capabilities?.codecs.find((codec) => codec.mimeType.toLowerCase() === "video/vp8");
  const offered = /** @type {{scalabilityModes?: string[]} | undefined} */ (vp8)?.scalabilityModes;
  const mode = TEMPORAL_LAYER_MODES.find((m) => !offered || offered.includes(m));
  const parameters = sender.getParameters();
  const encoding = /** @type {RTCRtpEncodingParameters & {scalabilityMode?: string} | undefined} */ (
    parameters.encodings?.[0]
  );
  if (!mode || !encoding || encoding.scalabilityMode === mode) return;
  encoding.scalabilityMode = mode;
  try {
    await sender.setParameters(parameters);
  } catch {
    // An older browser: one layer.
  }
}

/**
 * A screen is sent for detail: under congestion the encoder drops frames, never resolution (text
 * must stay readable). A browser without the setting keeps its default.
 * @param {RTCRtpSender} sender
 * @returns {Promise<void>}
 */
async function keepResolution(sender) {
  const parameters = /** @type {RTCRtpSendParameters & {degradationPreference?: string}} */ (sender.getParameters());
  if (parameters.degradationPreference === "maintain-resolution") return;
  parameters.degradationPreference = "maintain-resolution";
  try {
    await sender.setParameters(parameters);
  } catch {
    // Not supported here: the browser's default balance.
  }
}

/**
 * The source of an offer's track: the server names it; an older server names none, and then
 * its only sources are the camera and the microphone.
 * @param {TrackInfo} info
 * @returns {TrackSource}
 */
function trackSource(info) {
  if (info.source === "screen" || info.source === "screen_audio" || info.source === "camera" || info.source === "microphone") {
    return info.source;
  }
  return info.kind === "audio" ? "microphone" : "camera";
}

/** @param {TrackSource} source */
function isScreenSource(source) {
  return source === "screen" || source === "screen_audio";
}

/**
 * @param {RTCRtpTransceiver} transceiver
 * @returns {boolean}
 */
function isStopped(transceiver) {
  return transceiver.currentDirection === "stopped" || transceiver.direction === "stopped";
}

/**
 * A peer connection for a `joined` message's ICE settings. `onFailed` hears when its media
 * connection fails (the caller reconnects).
 * @param {JoinedMessage} message
 * @param {(pc: RTCPeerConnection) => void} onFailed
 * @returns {RTCPeerConnection}
 */
export function createPeerConnection(message, onFailed) {
  const pc = new RTCPeerConnection({
    iceServers: toIceServers(message.ice_servers),
    // "relay": media only through the TURN servers above (the server's
    // MEETNOW_ICE_TRANSPORT_POLICY); anything unknown keeps the browser's default.
    iceTransportPolicy: message.ice_transport_policy === "relay" ? "relay" : "all",
    bundlePolicy: "max-bundle",
  });
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "failed") onFailed(pc);
  };
  // Same signal for browsers without connectionState.
  pc.oniceconnectionstatechange = () => {
    if (pc.iceConnectionState === "failed") onFailed(pc);
  };
  return pc;
}

/** @param {RTCPeerConnection} pc */
export function closePeerConnection(pc) {
  pc.onconnectionstatechange = null;
  pc.oniceconnectionstatechange = null;
  try {
    pc.close();
  } catch {
    // ignore
  }
}

/**
 * Point each transceiver of the offer where it belongs: ours send our track, others' receive.
 * @param {RTCPeerConnection} pc
 * @param {OfferMessage} message
 * @param {OfferContext} context
 * @returns {Promise<RemoteTracks | null>} receiver tracks by remote participant; null once stale
 */
async function assignTransceivers(pc, message, context) {
  const tracks = message.tracks && typeof message.tracks === "object" ? message.tracks : {};
  /** @type {RemoteTracks} */
  const remote = { cameras: new Map(), screens: new Map() };
  for (const transceiver of pc.getTransceivers()) {
    const mid = transceiver.mid;
    if (mid === null || isStopped(transceiver)) continue;
    const info = Object.prototype.hasOwnProperty.call(tracks, mid) ? tracks[mid] : undefined;
    if (!info) {
      transceiver.direction = "inactive";
      continue;
    }
    const source = trackSource(info);
    if (info.participant === context.participantId) {
      const track = context.localTrack(source);
      if (track) {
        transceiver.direction = "sendonly";
        if (transceiver.sender.track !== track) await transceiver.sender.replaceTrack(track);
      } else {
        transceiver.direction = "inactive";
      }
    } else {
      transceiver.direction = "recvonly";
      const track = transceiver.receiver.track;
      const feeds = isScreenSource(source) ? remote.screens : remote.cameras;
      const list = feeds.get(info.participant) ?? [];
      list.push(track);
      feeds.set(info.participant, list);
    }
    if (context.stale()) return null;
  }
  return remote;
}

/**
 * Answer one offer; null if it went stale on the way (the answer is then never sent).
 * @param {RTCPeerConnection} pc
 * @param {OfferMessage} message
 * @param {OfferContext} context
 * @returns {Promise<Answer | null>}
 */
export async function answerOffer(pc, message, context) {
  await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
  if (context.stale()) return null;
  const remote = await assignTransceivers(pc, message, context);
  if (!remote) return null;
  const answer = await pc.createAnswer();
  if (context.stale()) return null;
  await pc.setLocalDescription(answer);
  if (context.stale()) return null;
  for (const transceiver of pc.getTransceivers()) {
    const sent = transceiver.sender.track;
    if (transceiver.direction === "sendonly" && sent?.kind === "video") {
      // contentHint "detail" marks the display track (screen.js): resolution over frame rate.
      if (sent.contentHint === "detail") await keepResolution(transceiver.sender);
      await requestTemporalLayers(transceiver.sender);
    }
  }
  if (context.stale()) return null;
  await waitForIceGathering(pc, ICE_GATHERING_TIMEOUT_MS);
  if (context.stale()) return null;
  const sdp = pc.localDescription ? pc.localDescription.sdp : answer.sdp;
  if (!sdp) throw new Error("empty SDP answer");
  return { sdp, remote };
}

/** One MediaStream per remote participant, handed out anew whenever its set of tracks changes. */
export class RemoteStreams {
  /** @param {(participantId: string, stream: MediaStream | null) => void} onChange */
  constructor(onChange) {
    /** @private @readonly */ this._onChange = onChange;
    /** @private @type {Map<string, {key: string, stream: MediaStream}>} */ this._streams = new Map();
  }

  /** @param {Map<string, MediaStreamTrack[]>} remote receiver tracks by participant, from an answer */
  update(remote) {
    for (const participantId of [...this._streams.keys()]) {
      if (!remote.has(participantId)) {
        this._streams.delete(participantId);
        this._onChange(participantId, null);
      }
    }
    for (const [participantId, tracks] of remote) {
      // Audio first, then video, each in m-line order.
      tracks.sort((a, b) => (a.kind === b.kind ? 0 : a.kind === "audio" ? -1 : 1));
      const key = tracks.map((track) => track.id).join(" ");
      const current = this._streams.get(participantId);
      if (current && current.key === key) continue;
      const stream = new MediaStream(tracks);
      this._streams.set(participantId, { key, stream });
      this._onChange(participantId, stream);
    }
  }

  /** Forget every stream (the connection is gone), telling the page each one went away. */
  clear() {
    for (const participantId of [...this._streams.keys()]) {
      this._streams.delete(participantId);
      this._onChange(participantId, null);
    }
  }
}
