// The pre-join network check (docs/protocol.md, "Network check"): can this browser's media reach
// the relay, and how? A websocket of its own sends `network_check`; the server offers a peer
// connection with one data channel, made with the relay's ICE settings; we answer (every candidate
// in the answer, no trickle) and watch the data channel. Open within the deadline: reachable, and
// the selected candidate pair says how (our local candidate `relay`: only through TURN). No DOM.

import { t } from "./i18n.js";
import { websocketUrl } from "./wire.js";

/**
 * @typedef {"direct" | "turn" | "unreachable" | "unknown"} NetworkResult
 *   unknown: the check itself could not run (the server refused it, the socket failed)
 *
 * @typedef {object} NetworkCheckResult
 * @property {NetworkResult} result
 * @property {string} detail what it means and what to do, in words for people
 * @property {string | null} localCandidateType our candidate of the selected pair (host, srflx,
 *   prflx, relay), or null if none was selected
 * @property {string[]} gatheredTypes the types of every candidate we gathered (for tests: the
 *   result comes from the selected pair, never from these)
 *
 * @typedef {{urls: string[] | string, username?: string | null, credential?: string | null}} IceServerInfo
 * @typedef {{type: "network_check_offer", sdp: string, ice_servers: IceServerInfo[],
 *   ice_transport_policy?: "all" | "relay", seconds?: number}} NetworkCheckOffer
 * @typedef {{type: "error", code: string, message: string}} ErrorReply
 *
 * @typedef {object} NetworkCheckOptions
 * @property {string} [url] websocket URL; default /ws/{roomId} on the page's host
 * @property {number} [deadlineMs] how long the data channel has to open once the offer is in
 */

/** The data channel must open within this long of the offer's arrival. */
export const OPEN_DEADLINE_MS = 5_000;
/** Gathering our candidates stops after this long (as for calls: peer.js). */
const GATHERING_TIMEOUT_MS = 2_000;
/** The offer must arrive this long after the socket is asked for. */
const OFFER_TIMEOUT_MS = 10_000;

export const ADVICE = {
  direct: t("page.netcheck.direct"),
  turn: t("page.netcheck.turn"),
  unreachable: t("page.netcheck.unreachable"),
};

/**
 * The type of our candidate in the pair ICE selected, or null. Chromium names the pair in its
 * transport stats; Firefox marks the pair itself `selected`.
 * @param {RTCStatsReport} stats
 * @returns {string | null}
 */
export function selectedLocalCandidateType(stats) {
  /** @type {any} */
  let pair = null;
  stats.forEach((/** @type {any} */ stat) => {
    if (stat.type === "transport" && stat.selectedCandidatePairId) {
      pair = stats.get(stat.selectedCandidatePairId) ?? pair;
    }
  });
  if (!pair) {
    stats.forEach((/** @type {any} */ stat) => {
      if (stat.type === "candidate-pair" && stat.selected) pair = stat;
    });
  }
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  return local && typeof local.candidateType === "string" ? local.candidateType : null;
}

/**
 * @param {RTCStatsReport} stats
 * @returns {string[]}
 */
function gatheredCandidateTypes(stats) {
  /** @type {string[]} */
  const types = [];
  stats.forEach((/** @type {any} */ stat) => {
    if (stat.type === "local-candidate" && typeof stat.candidateType === "string") {
      types.push(stat.candidateType);
    }
  });
  return types;
}

/**
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
 * @param {RTCPeerConnection} pc
 * @returns {Promise<void>}
 */
function gatheringDone(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, GATHERING_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

/**
 * Resolves with the server's offer; rejects with the server's error message or a socket failure.
 * @param {WebSocket} ws
 * @returns {Promise<NetworkCheckOffer>}
 */
function receiveOffer(ws) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(t("page.netcheck.no_answer"))), OFFER_TIMEOUT_MS);
    ws.onopen = () => ws.send(JSON.stringify({ type: "network_check" }));
    ws.onmessage = (event) => {
      /** @type {any} */
      let message = null;
      try {
        message = JSON.parse(String(event.data));
      } catch {
        return;
      }
      if (message?.type === "network_check_offer" && typeof message.sdp === "string") {
        clearTimeout(timer);
        resolve(/** @type {NetworkCheckOffer} */ (message));
      } else if (message?.type === "error") {
        clearTimeout(timer);
        reject(new Error(typeof message.message === "string" ? message.message : t("page.netcheck.refused")));
      }
    };
    ws.onclose = () => {
      clearTimeout(timer);
      reject(new Error(t("page.netcheck.closed")));
    };
  });
}

/**
 * @param {RTCPeerConnection} pc
 * @param {number} deadlineMs
 * @returns {Promise<boolean>} whether a data channel opened in time
 */
function dataChannelOpens(pc, deadlineMs) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), deadlineMs);
    pc.ondatachannel = (event) => {
      const channel = event.channel;
      const opened = () => {
        clearTimeout(timer);
        resolve(true);
      };
      if (channel.readyState === "open") opened();
      else channel.onopen = opened;
    };
  });
}

/**
 * Run one network check for a room. Never throws: a check that cannot run says so ("unknown").
 * @param {string} roomId
 * @param {NetworkCheckOptions} [options]
 * @returns {Promise<NetworkCheckResult>}
 */
export async function runNetworkCheck(roomId, options = {}) {
  if (typeof RTCPeerConnection === "undefined") {
    return { result: "unknown", detail: t("page.netcheck.unsupported"), localCandidateType: null, gatheredTypes: [] };
  }
  /** @type {WebSocket | null} */
  let ws = null;
  /** @type {RTCPeerConnection | null} */
  let pc = null;
  try {
    ws = new WebSocket(options.url ?? websocketUrl(roomId));
    const offer = await receiveOffer(ws);
    pc = new RTCPeerConnection({
      iceServers: toIceServers(offer.ice_servers),
      iceTransportPolicy: offer.ice_transport_policy === "relay" ? "relay" : "all",
      bundlePolicy: "max-bundle",
    });
    const opened = dataChannelOpens(pc, options.deadlineMs ?? OPEN_DEADLINE_MS);
    await pc.setRemoteDescription({ type: "offer", sdp: offer.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await gatheringDone(pc);
    const sdp = pc.localDescription?.sdp ?? "";
    ws.send(JSON.stringify({ type: "network_check_answer", sdp }));
    const open = await opened;
    const stats = await pc.getStats();
    const localCandidateType = open ? selectedLocalCandidateType(stats) : null;
    const gatheredTypes = gatheredCandidateTypes(stats);
    if (!open) return { result: "unreachable", detail: ADVICE.unreachable, localCandidateType, gatheredTypes };
    const result = localCandidateType === "relay" ? "turn" : "direct";
    return { result, detail: ADVICE[result], localCandidateType, gatheredTypes };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { result: "unknown", detail: t("page.netcheck.failed", { reason }), localCandidateType: null, gatheredTypes: [] };
  } finally {
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      ws.close(1000);
    }
    pc?.close();
  }
}
