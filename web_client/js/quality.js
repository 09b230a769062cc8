// Connection quality: every couple of seconds, one getStats() of the peer connection to the relay
// gives each remote tile (what reaches us from that participant) and our own tile (our uplink) a
// `data-quality` of good, fair or poor, with the figures in its tooltip. Poor for several seconds,
// on our uplink or on everything we receive (then it is our downlink), shows a hint once per call.

import { el } from "./dom.js";
import { language, t } from "./i18n.js";
import { showNotice } from "./notices.js";
import { state } from "./state.js";

/**
 * @typedef {"good" | "fair" | "poor"} Quality
 *
 * @typedef {object} Figures what one tile's quality is judged on; null where not measured
 * @property {number | null} loss fraction of packets lost over the window, 0..1
 * @property {number | null} rttMs round-trip time to the relay
 * @property {number | null} fps video frames per second (null when no video is expected)
 * @property {string | null} limitation our encoder's qualityLimitationReason, when not "none"
 *
 * @typedef {object} Counters cumulative counters of one tile at one moment
 * @property {number} at ms (stats timestamp)
 * @property {number} packets received (remote) or sent (ours: the lost ones among them)
 * @property {number} lost
 * @property {boolean} sent whether `packets` counts what was sent (lost included)
 * @property {number} frames decoded (remote) or encoded (ours)
 *
 * @typedef {object} QualityState
 * @property {RTCPeerConnection | null} pc the connection the history belongs to
 * @property {Map<string, Counters[]>} history recent counters by tile key ("out" = ours)
 * @property {object | null} call the call whose hint was shown (once per call)
 * @property {number | null} poorSince when our own connection turned poor (performance.now())
 * @property {boolean} busy a sample is in flight
 */

// Thresholds: the worst figure decides. Loss and round-trip time are what people hear and see
// break; frames per second is what reaches the tile once the browser has coped (it lowers the
// frame rate before the picture falls apart).
/** 2% loss: measured through this relay, 2% costs a video about one freeze a minute. */
const LOSS_FAIR = 0.02;
/** 8% loss: retransmission cannot keep up; video freezes for seconds and speech breaks up. */
const LOSS_POOR = 0.08;
/** ITU-T G.114: beyond 150 ms one way (300 ms round trip) people start to talk over each other. */
const RTT_FAIR_MS = 300;
/** G.114: beyond 400 ms one way a conversation is impractical for most people. */
const RTT_POOR_MS = 800;
/** Under 12 fps motion looks jerky (the relay sends 15 or 7.5 fps to a slow link). */
const FPS_FAIR = 12;
/** Under 5 fps video is a slide show (0: frozen). */
const FPS_POOR = 5;

/** One getStats() of one connection every 2 s costs well under a millisecond. */
export const SAMPLE_INTERVAL_MS = 2_000;
/** Loss and frame rate over the last few seconds: one burst does not paint a tile red forever. */
const WINDOW_MS = 6_000;
/** A window shorter than this says nothing yet (the first sample after joining). */
const MIN_SPAN_MS = 1_500;
/** Poor for this long (not a passing burst) before the hint. */
const POOR_HINT_AFTER_MS = 5_000;
const POOR_HINT = t("page.quality.poor_hint");
/** The encoder's qualityLimitationReason values the catalogs name (anything else: "other"). */
const LIMITATIONS = ["cpu", "bandwidth", "other"];

/**
 * @param {Figures} figures
 * @returns {Quality}
 */
export function classify(figures) {
  const { loss, rttMs, fps, limitation } = figures;
  if ((loss !== null && loss >= LOSS_POOR) || (rttMs !== null && rttMs >= RTT_POOR_MS) || (fps !== null && fps < FPS_POOR)) {
    return "poor";
  }
  if (
    (loss !== null && loss >= LOSS_FAIR) ||
    (rttMs !== null && rttMs >= RTT_FAIR_MS) ||
    (fps !== null && fps < FPS_FAIR) ||
    limitation !== null
  ) {
    return "fair";
  }
  return "good";
}

/**
 * The tooltip: "Loss 0.4% · RTT 12 ms · 30 fps".
 * @param {Figures} figures
 */
export function describe(figures) {
  const parts = [];
  if (figures.loss !== null) {
    const percent = (figures.loss * 100).toLocaleString(language, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
    parts.push(t("page.quality.loss", { percent }));
  }
  if (figures.rttMs !== null) parts.push(t("page.quality.rtt", { ms: Math.round(figures.rttMs) }));
  if (figures.fps !== null) parts.push(t("page.quality.fps", { fps: Math.round(figures.fps) }));
  if (figures.limitation !== null) parts.push(t(`page.quality.limited.${LIMITATIONS.includes(figures.limitation) ? figures.limitation : "other"}`));
  return parts.join(" · ");
}

// ------------------------------------------------------------------ reading the stats

/**
 * @param {RTCStatsReport} report
 * @returns {number | null} the selected candidate pair's current round-trip time, in ms
 */
function candidatePairRttMs(report) {
  /** @type {Record<string, any> | null} */
  let pair = null;
  report.forEach((stat) => {
    if (stat.type === "transport" && stat.selectedCandidatePairId) pair = report.get(stat.selectedCandidatePairId) ?? pair;
  });
  if (!pair) {
    // Firefox marks the pair itself.
    report.forEach((stat) => {
      if (stat.type === "candidate-pair" && (stat.selected || (stat.nominated && stat.state === "succeeded"))) pair = stat;
    });
  }
  const seconds = pair ? /** @type {Record<string, any>} */ (pair).currentRoundTripTime : undefined;
  return typeof seconds === "number" ? seconds * 1000 : null;
}

/**
 * Keep these counters in the tile's history and return the figures over the window.
 * @param {string} key
 * @param {Counters} now
 * @param {boolean} videoExpected
 * @returns {{loss: number | null, fps: number | null} | null} null until the window spans enough
 */
function windowed(key, now, videoExpected) {
  const history = state.quality.history.get(key) ?? [];
  history.push(now);
  while (history.length > 1 && now.at - history[0].at > WINDOW_MS) history.shift();
  state.quality.history.set(key, history);
  const first = history[0];
  const span = now.at - first.at;
  if (span < MIN_SPAN_MS) return null;
  const packets = now.packets - first.packets;
  const lost = Math.max(0, now.lost - first.lost);
  const total = now.sent ? packets : packets + lost;
  return {
    loss: total > 0 ? Math.min(1, lost / total) : null,
    fps: videoExpected ? (Math.max(0, now.frames - first.frames) * 1000) / span : null,
  };
}

/**
 * What reached us from one participant: their tracks' inbound-rtp.
 * @param {RTCStatsReport} report
 * @param {MediaStream} stream
 * @returns {Counters}
 */
function inboundCounters(report, stream) {
  const ids = new Set(stream.getTracks().map((track) => track.id));
  /** @type {Counters} */
  const counters = { at: 0, packets: 0, lost: 0, frames: 0, sent: false };
  report.forEach((stat) => {
    if (stat.type !== "inbound-rtp" || !ids.has(stat.trackIdentifier)) return;
    counters.at = Math.max(counters.at, stat.timestamp);
    counters.packets += stat.packetsReceived ?? 0;
    counters.lost += stat.packetsLost ?? 0;
    if (stat.kind === "video") counters.frames += stat.framesDecoded ?? 0;
  });
  return counters;
}

/**
 * Our uplink: what we sent (outbound-rtp) and what the relay says it lost (remote-inbound-rtp).
 * @param {RTCStatsReport} report
 * @param {MediaStreamTrack | null} camera
 * @returns {{counters: Counters, rttMs: number | null, limitation: string | null}}
 */
function outboundCounters(report, camera) {
  /** @type {Counters} */
  const counters = { at: 0, packets: 0, lost: 0, frames: 0, sent: true };
  /** @type {number | null} */
  let rttMs = null;
  /** @type {string | null} */
  let limitation = null;
  report.forEach((stat) => {
    if (stat.type === "outbound-rtp") {
      counters.at = Math.max(counters.at, stat.timestamp);
      counters.packets += stat.packetsSent ?? 0;
      const source = stat.mediaSourceId ? report.get(stat.mediaSourceId) : null;
      const fromCamera = camera !== null && stat.kind === "video" && (!source || source.trackIdentifier === camera.id);
      if (fromCamera) {
        counters.frames += stat.framesEncoded ?? 0;
        const reason = stat.qualityLimitationReason;
        if (typeof reason === "string" && reason !== "none") limitation = reason;
      }
    } else if (stat.type === "remote-inbound-rtp") {
      counters.lost += stat.packetsLost ?? 0;
      if (typeof stat.roundTripTime === "number") rttMs = Math.max(rttMs ?? 0, stat.roundTripTime * 1000);
    }
  });
  return { counters, rttMs, limitation };
}

// ------------------------------------------------------------------ showing it

/**
 * @param {HTMLElement} root a tile
 * @param {Figures} figures
 * @returns {Quality}
 */
function showQuality(root, figures) {
  const quality = classify(figures);
  const text = describe(figures);
  root.setAttribute("data-quality", quality);
  root.title = text;
  let badge = root.querySelector(".tile__quality");
  if (!badge) {
    badge = el("span", "tile__quality");
    badge.setAttribute("role", "img");
    (root.querySelector(".tile__footer") ?? root).prepend(badge);
  }
  badge.setAttribute("aria-label", t(`page.quality.label.${quality}`, { figures: text }));
  return quality;
}

/**
 * Poor for long enough (on our uplink, or on everything we receive): the hint, once per call.
 * @param {boolean} poor
 */
function hintIfPoor(poor) {
  const quality = state.quality;
  if (!poor) {
    quality.poorSince = null;
    return;
  }
  const now = performance.now();
  quality.poorSince ??= now;
  if (now - quality.poorSince < POOR_HINT_AFTER_MS || quality.call === state.call) return;
  quality.call = state.call;
  showNotice("quality", POOR_HINT, { kind: "warn", dismissible: true });
}

/**
 * One sample: read the stats once, judge every tile.
 * @param {RTCPeerConnection} pc
 */
async function sample(pc) {
  const report = await pc.getStats();
  if (state.call?.peerConnection !== pc) return;
  const rttMs = candidatePairRttMs(report);
  /** @type {Quality[]} */
  const remote = [];
  for (const [participantId, tile] of state.tiles) {
    const stream = state.remoteStreams.get(participantId);
    if (!stream) continue;
    const videoExpected = stream.getVideoTracks().length > 0 && !tile.root.classList.contains("tile--video-off");
    const counters = inboundCounters(report, stream);
    const window = counters.at ? windowed(`in:${participantId}`, counters, videoExpected) : null;
    if (window) remote.push(showQuality(tile.root, { ...window, rttMs, limitation: null }));
  }
  /** @type {Quality | null} */
  let own = null;
  const camera = state.localStream.getVideoTracks().find((track) => track.readyState === "live") ?? null;
  const sending = camera !== null && camera.enabled;
  const out = outboundCounters(report, sending ? camera : null);
  const window = out.counters.at ? windowed("out", out.counters, sending) : null;
  if (window && state.localTile) {
    own = showQuality(state.localTile.root, { ...window, rttMs: out.rttMs ?? rttMs, limitation: out.limitation });
  }
  hintIfPoor(own === "poor" || (remote.length > 0 && remote.every((quality) => quality === "poor")));
}

/** Sample the current call's connection, if any; a new connection starts a new history. */
async function tick() {
  const quality = state.quality;
  const pc = state.call?.peerConnection ?? null;
  if (quality.pc !== pc) {
    quality.pc = pc;
    quality.history.clear();
    quality.poorSince = null;
  }
  if (!pc || quality.busy || pc.connectionState === "closed") return;
  quality.busy = true;
  try {
    await sample(pc);
  } catch {
    // A connection closed mid-sample: the next tick sees the new one.
  } finally {
    quality.busy = false;
  }
}

/** Start sampling; it costs nothing while there is no call. */
export function startQualityMonitor() {
  setInterval(() => void tick(), SAMPLE_INTERVAL_MS);
}
