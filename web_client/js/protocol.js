// meetnow signaling + WebRTC client (no DOM).
//
// Speaks version 1 of the protocol described in docs/protocol.md: one websocket per participant,
// the server is always the SDP offerer, this client always answers (no trickle ICE: answers carry
// every candidate).
//
// Events dispatched by MeetnowCall (all CustomEvent; `detail` shown):
//   "waiting"             {room, rejoined}          in the lobby: a host must let us in ("joined"
//                         follows) or turn us away ("ended" with code "denied")
//   "joined"              {participantId, host, room, participants, waiting, rejoined}  (also after
//                         each reconnect: `participants` is then the complete list of everyone else,
//                         and `waiting` (hosts only) the complete lobby: rebuild from them)
//   "participant-joined"  {participant}
//   "participant-updated" {participant}             someone else changed (media, host, muted_by_host)
//   "self-updated"        {participant}             a host changed us (made us a host, muted us)
//   "knock"               {participant}             hosts: someone waits in the lobby ({id, name})
//   "knock-resolved"      {participantId, admitted} hosts: a knock was answered or given up
//   "room-updated"        {room}                    the room's `locked` or `lobby` changed
//   "participant-left"    {participantId}
//   "remote-stream"       {participantId, stream}   stream: MediaStream with that participant's
//                         receiver tracks, or null when it has none (re-emitted whenever the set
//                         changes; set it as srcObject)
//   "reconnecting"        {attempt, delayMs, reason}
//   "reconnected"         {}                        (after "joined", when it was a rejoin)
//   "server-error"        {code, message}           a non-fatal `error` from the server
//                         (rate_limited, not_host, out_of_order...): the call goes on
//   "ended"               {code, message, reason}   terminal, never followed by a reconnect: a fatal
//                         error (locked, removed, denied, room_ended, room_not_found, room_full...),
//                         room_closed (code "room_closed", reason expired|ended|server_shutdown; "ended"
//                         means a host ended it for everyone), "replaced" (same session joined
//                         elsewhere), "webrtc_unsupported"
//   "left"                {}                        after leave()

export const PROTOCOL_VERSION = 1;

const PING_INTERVAL_MS = 15_000;
/** A ping unanswered (no pong, no message at all) for this long: the connection is dead. */
const PONG_TIMEOUT_MS = 10_000;
const ICE_GATHERING_TIMEOUT_MS = 2_000;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 5_000;
/** Close code the server uses when the same session joined again from another connection. */
const CLOSE_REPLACED = 4000;
/** Error codes after which joining again cannot help: they end the call even if not marked fatal. */
const TERMINAL_CODES = new Set(["locked", "removed", "denied", "room_ended", "room_not_found", "unsupported_version"]);

/**
 * @typedef {{audio: boolean, video: boolean}} MediaState
 * @typedef {{id: string, name: string, media: MediaState, host?: boolean, muted_by_host?: boolean}} ParticipantInfo
 * @typedef {{id: string, topic: string | null, url: string, max_participants: number,
 *   locked?: boolean, lobby?: boolean}} RoomInfo
 * @typedef {{id: string, name: string}} KnockInfo
 * @typedef {{urls: string[] | string, username?: string | null, credential?: string | null}} IceServerInfo
 * @typedef {{participant: string, kind: "audio" | "video"}} TrackInfo
 *
 * @typedef {{type: "joined", version: number, participant_id: string, host?: boolean, room: RoomInfo,
 *   participants: ParticipantInfo[], waiting?: KnockInfo[], ice_servers: IceServerInfo[],
 *   ice_transport_policy?: "all" | "relay"}} JoinedMessage
 * @typedef {{type: "waiting", room: RoomInfo}} WaitingMessage
 * @typedef {{type: "knock", participant: KnockInfo}} KnockMessage
 * @typedef {{type: "knock_resolved", participant_id: string, admitted: boolean}} KnockResolvedMessage
 * @typedef {{type: "room_updated", room: RoomInfo}} RoomUpdatedMessage
 * @typedef {{type: "offer", revision: number, sdp: string, tracks: Record<string, TrackInfo>}} OfferMessage
 * @typedef {{type: "participant_joined", participant: ParticipantInfo}} ParticipantJoinedMessage
 * @typedef {{type: "participant_updated", participant: ParticipantInfo}} ParticipantUpdatedMessage
 * @typedef {{type: "participant_left", participant_id: string}} ParticipantLeftMessage
 * @typedef {{type: "pong"}} PongMessage
 * @typedef {{type: "error", code: string, message: string, fatal?: boolean}} ErrorMessage
 * @typedef {{type: "room_closed", reason: "expired" | "ended" | "server_shutdown"}} RoomClosedMessage
 * @typedef {JoinedMessage | WaitingMessage | KnockMessage | KnockResolvedMessage | RoomUpdatedMessage
 *   | OfferMessage | ParticipantJoinedMessage | ParticipantUpdatedMessage | ParticipantLeftMessage
 *   | PongMessage | ErrorMessage | RoomClosedMessage} ServerMessage
 *
 * @typedef {{type: "join", version: number, name: string, session: string, audio: boolean, video: boolean,
 *     host_token?: string}
 *   | {type: "answer", revision: number, sdp: string}
 *   | {type: "media_state", audio: boolean, video: boolean}
 *   | {type: "ping"}
 *   | {type: "leave"}
 *   | {type: "admit" | "deny" | "remove" | "make_host", participant_id: string}
 *   | {type: "mute", participant_id: string, muted: boolean}
 *   | {type: "lock", locked: boolean}
 *   | {type: "set_lobby", enabled: boolean}
 *   | {type: "end_meeting"}} ClientMessage
 *
 * @typedef {{participantId: string, host: boolean, room: RoomInfo, participants: ParticipantInfo[],
 *   waiting: KnockInfo[], rejoined: boolean}} JoinedDetail
 * @typedef {{room: RoomInfo, rejoined: boolean}} WaitingDetail
 * @typedef {{participant: KnockInfo}} KnockDetail
 * @typedef {{participantId: string, admitted: boolean}} KnockResolvedDetail
 * @typedef {{room: RoomInfo}} RoomUpdatedDetail
 * @typedef {{participant: ParticipantInfo}} ParticipantDetail
 * @typedef {{participantId: string}} ParticipantLeftDetail
 * @typedef {{participantId: string, stream: MediaStream | null}} RemoteStreamDetail
 * @typedef {{attempt: number, delayMs: number, reason: string}} ReconnectingDetail
 * @typedef {{code: string, message: string}} ServerErrorDetail
 * @typedef {{code: string, message: string, reason: string | null}} EndedDetail
 *
 * @typedef {object} MeetnowCallOptions
 * @property {string} roomId
 * @property {string} name display name (trimmed and capped by the server)
 * @property {string} session 16-64 chars of [A-Za-z0-9_-], kept across reconnects
 * @property {MediaStream} stream local media; may hold no audio and/or no video track
 * @property {string} [url] websocket URL; default: /ws/{roomId} on the page's host
 * @property {string} [roomPageUrl] URL whose 404 or 410 means the room is gone; default /r/{roomId}
 * @property {string | null} [hostToken] the host secret from the host link (sent in `join` only)
 */

const SESSION_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/**
 * A random session id: `length` URL-safe characters from crypto.getRandomValues.
 * @param {number} [length]
 * @returns {string}
 */
export function randomSessionId(length = 24) {
  const bytes = new Uint8Array(length);
  crypto.getRandomValues(bytes);
  let out = "";
  for (const byte of bytes) out += SESSION_ALPHABET[byte & 63];
  return out;
}

/**
 * Whether `value` is acceptable as the `session` of a join message.
 * @param {unknown} value
 * @returns {value is string}
 */
export function isValidSessionId(value) {
  return typeof value === "string" && /^[A-Za-z0-9_-]{16,64}$/.test(value);
}

/**
 * The signaling websocket URL for a room, on the same host as the page.
 * @param {string} roomId
 * @param {{protocol: string, host: string}} [where] defaults to the page's location
 * @returns {string}
 */
export function websocketUrl(roomId, where = globalThis.location) {
  const scheme = where.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${where.host}/ws/${encodeURIComponent(roomId)}`;
}

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
 * @param {RTCRtpTransceiver} transceiver
 * @returns {boolean}
 */
function isStopped(transceiver) {
  return transceiver.currentDirection === "stopped" || transceiver.direction === "stopped";
}

/**
 * Whether `value` looks like a host token (what `secrets.token_urlsafe` makes, at most 64 chars).
 * @param {unknown} value
 * @returns {value is string}
 */
export function isValidHostToken(value) {
  return typeof value === "string" && /^[A-Za-z0-9_-]{16,64}$/.test(value);
}

/**
 * @param {unknown} value
 * @returns {value is ServerMessage}
 */
function looksLikeMessage(value) {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (/** @type {{type?: unknown}} */ (value).type) === "string"
  );
}

/** One group call from this browser: the websocket, the peer connection and reconnection. */
export class MeetnowCall extends EventTarget {
  /** @param {MeetnowCallOptions} options */
  constructor(options) {
    super();
    /** @readonly */ this.roomId = options.roomId;
    /** @readonly */ this.name = options.name;
    /** @readonly */ this.session = options.session;
    /** @readonly */ this.stream = options.stream;
    /** @private @readonly */ this._url = options.url ?? websocketUrl(options.roomId);
    /** @private @readonly */ this._roomPageUrl =
      options.roomPageUrl ?? `/r/${encodeURIComponent(options.roomId)}`;
    /** Never logged, never put in a URL: it only goes into `join`. @private @readonly */
    this._hostToken = isValidHostToken(options.hostToken) ? options.hostToken : null;

    /** @private */ this._audioEnabled = this._trackEnabled("audio");
    /** @private */ this._videoEnabled = this._trackEnabled("video");

    /** @private @type {WebSocket | null} */ this._ws = null;
    /** @private @type {RTCPeerConnection | null} */ this._pc = null;
    /** Bumped whenever the current websocket/pc pair is torn down; stale callbacks compare it.
     * @private */
    this._generation = 0;
    /** @private */ this._started = false;
    /** Left, or ended for good: never reconnect again. @private */
    this._stopped = false;
    /** @private */ this._everJoined = false;
    /** @private */ this._joinedNow = false;
    /** @private */ this._reconnecting = false;
    /** @private */ this._attempt = 0;
    /** @private @type {ReturnType<typeof setTimeout> | null} */ this._retryTimer = null;
    /** @private @type {ReturnType<typeof setInterval> | null} */ this._pingTimer = null;
    /** @private */ this._lastMessageAt = 0;
    /** @private */ this._lastPingAt = 0;
    /** @private @type {Promise<void>} */ this._offerChain = Promise.resolve();
    /** @private @type {string | null} */ this._participantId = null;
    /** @private */ this._host = false;
    /** @private */ this._waiting = false;
    /** @private @type {{audio: boolean, video: boolean} | null} */ this._sentMedia = null;
    /** Per remote participant: its receiver tracks and the stream handed to the UI.
     * @private @type {Map<string, {key: string, stream: MediaStream}>} */
    this._remote = new Map();

    /** @private */ this._onOnline = () => {
      // Back online while waiting to retry: retry now.
      if (this._retryTimer !== null && !this._stopped) {
        clearTimeout(this._retryTimer);
        this._retryTimer = null;
        this._connect();
      }
    };
  }

  /** Our participant id in the room (changes on each reconnect), or null before `joined`. */
  get participantId() {
    return this._participantId;
  }

  /** Whether we are joined right now (not connecting, not reconnecting, not ended). */
  get connected() {
    return this._joinedNow;
  }

  /** Whether we have host rights in the room right now. */
  get isHost() {
    return this._joinedNow && this._host;
  }

  /** Whether we wait in the lobby right now. */
  get waiting() {
    return this._waiting;
  }

  /** The media state we announce: {audio, video}. */
  get mediaState() {
    return { audio: this._audioEnabled, video: this._videoEnabled };
  }

  /** Open the websocket and join. Call once. */
  start() {
    if (this._started) return;
    this._started = true;
    if (typeof RTCPeerConnection !== "function" || typeof WebSocket !== "function") {
      this._end("webrtc_unsupported", "This browser cannot make video calls.", null);
      return;
    }
    if (typeof globalThis.addEventListener === "function") {
      globalThis.addEventListener("online", this._onOnline);
    }
    this._connect();
  }

  /**
   * Enable or disable the microphone track and tell the others.
   * @param {boolean} enabled
   * @returns {boolean} the resulting state (false when there is no microphone track)
   */
  setAudioEnabled(enabled) {
    for (const track of this.stream.getAudioTracks()) track.enabled = enabled;
    this._audioEnabled = enabled && this.stream.getAudioTracks().length > 0;
    this._sendMediaState();
    return this._audioEnabled;
  }

  /**
   * Enable or disable the camera track and tell the others.
   * @param {boolean} enabled
   * @returns {boolean} the resulting state (false when there is no camera track)
   */
  setVideoEnabled(enabled) {
    for (const track of this.stream.getVideoTracks()) track.enabled = enabled;
    this._videoEnabled = enabled && this.stream.getVideoTracks().length > 0;
    this._sendMediaState();
    return this._videoEnabled;
  }

  // ------------------------------------------------------------------ host commands
  // Each returns whether it was sent; the server answers with events (knock-resolved,
  // participant-updated, room-updated...) or a non-fatal "server-error" (not_host...).

  /** @param {string} participantId someone waiting in the lobby */
  admit(participantId) {
    return this._sendInCall({ type: "admit", participant_id: participantId });
  }

  /** @param {string} participantId someone waiting in the lobby */
  deny(participantId) {
    return this._sendInCall({ type: "deny", participant_id: participantId });
  }

  /** @param {string} participantId someone in the call; their session cannot come straight back */
  remove(participantId) {
    return this._sendInCall({ type: "remove", participant_id: participantId });
  }

  /**
   * Stop (or resume) forwarding someone's audio to the others.
   * @param {string} participantId
   * @param {boolean} muted
   */
  mute(participantId, muted) {
    return this._sendInCall({ type: "mute", participant_id: participantId, muted });
  }

  /** @param {string} participantId */
  makeHost(participantId) {
    return this._sendInCall({ type: "make_host", participant_id: participantId });
  }

  /** @param {boolean} locked */
  setLocked(locked) {
    return this._sendInCall({ type: "lock", locked });
  }

  /** @param {boolean} enabled */
  setLobby(enabled) {
    return this._sendInCall({ type: "set_lobby", enabled });
  }

  /** End the meeting for everyone; every page then gets "ended" (room_closed, reason "ended"). */
  endMeeting() {
    return this._sendInCall({ type: "end_meeting" });
  }

  /** Leave the room and close everything. Local tracks are left to the caller. */
  leave() {
    if (this._stopped) {
      this._shutdown();
      return;
    }
    this._stopped = true;
    this._send({ type: "leave" });
    this._shutdown();
    this._emit("left", {});
  }

  // ------------------------------------------------------------------ connection

  /** @private */
  _connect() {
    if (this._stopped) return;
    const generation = ++this._generation;
    /** @type {WebSocket} */
    let ws;
    try {
      ws = new WebSocket(this._url);
    } catch (error) {
      this._connectionLost(`cannot open websocket: ${String(error)}`);
      return;
    }
    this._ws = ws;
    let opened = false;

    ws.onopen = () => {
      if (generation !== this._generation) return;
      opened = true;
      this._lastMessageAt = Date.now();
      /** @type {ClientMessage} */
      const join = {
        type: "join",
        version: PROTOCOL_VERSION,
        name: this.name,
        session: this.session,
        audio: this.stream.getAudioTracks().length > 0,
        video: this.stream.getVideoTracks().length > 0,
      };
      if (this._hostToken !== null) join.host_token = this._hostToken;
      this._send(join);
      this._startPing();
    };
    ws.onmessage = (event) => {
      if (generation !== this._generation) return;
      this._lastMessageAt = Date.now();
      if (typeof event.data !== "string") return;
      /** @type {unknown} */
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (looksLikeMessage(message)) this._handleMessage(message, generation);
    };
    ws.onclose = (event) => {
      if (generation !== this._generation || this._stopped) return;
      if (event.code === CLOSE_REPLACED) {
        this._end("replaced", "You joined this meeting from another tab or window.", null);
      } else if (!opened) {
        void this._checkRoomThenRetry(generation);
      } else {
        this._connectionLost(`websocket closed (${event.code})`);
      }
    };
    ws.onerror = () => {
      // A close event always follows; handled there.
    };
  }

  /**
   * The websocket never opened: a room that is gone answers 404 before the upgrade, which the
   * browser does not expose. Ask the room page (no side effects) to tell "gone" from "network".
   * @private
   * @param {number} generation
   */
  async _checkRoomThenRetry(generation) {
    let status = 0;
    try {
      const response = await fetch(this._roomPageUrl, { cache: "no-store", credentials: "same-origin" });
      status = response.status;
    } catch {
      // Network trouble: retry below.
    }
    if (generation !== this._generation || this._stopped) return;
    if (status === 410) {
      this._end("room_ended", "This meeting has ended.", null);
    } else if (status === 404) {
      this._end("room_not_found", "This meeting link is not valid or has expired.", null);
    } else {
      this._connectionLost("could not connect");
    }
  }

  /**
   * Tear the connection down and schedule a rejoin with backoff.
   * @private
   * @param {string} reason
   */
  _connectionLost(reason) {
    if (this._stopped || this._retryTimer !== null) return;
    this._teardown();
    const delayMs = Math.min(BACKOFF_FIRST_MS * 2 ** this._attempt, BACKOFF_MAX_MS);
    this._attempt += 1;
    this._reconnecting = true;
    this._emit("reconnecting", { attempt: this._attempt, delayMs, reason });
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      this._connect();
    }, delayMs);
  }

  /**
   * Stop for good and tell the UI why.
   * @private
   * @param {string} code
   * @param {string} message
   * @param {string | null} reason
   */
  _end(code, message, reason) {
    if (this._stopped) return;
    this._stopped = true;
    this._shutdown();
    this._emit("ended", { code, message, reason });
  }

  /** @private */
  _shutdown() {
    if (this._retryTimer !== null) {
      clearTimeout(this._retryTimer);
      this._retryTimer = null;
    }
    if (typeof globalThis.removeEventListener === "function") {
      globalThis.removeEventListener("online", this._onOnline);
    }
    this._teardown();
  }

  /** Close the current websocket and peer connection; forget remote streams. @private */
  _teardown() {
    this._generation += 1;
    this._joinedNow = false;
    this._waiting = false;
    this._host = false;
    this._sentMedia = null;
    this._participantId = null;
    this._offerChain = Promise.resolve();
    if (this._pingTimer !== null) {
      clearInterval(this._pingTimer);
      this._pingTimer = null;
    }
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(1000);
      } catch {
        // already closing
      }
    }
    this._closePeerConnection();
    for (const participantId of [...this._remote.keys()]) {
      this._remote.delete(participantId);
      this._emit("remote-stream", { participantId, stream: null });
    }
  }

  /** @private */
  _closePeerConnection() {
    const pc = this._pc;
    this._pc = null;
    if (!pc) return;
    pc.onconnectionstatechange = null;
    pc.oniceconnectionstatechange = null;
    try {
      pc.close();
    } catch {
      // ignore
    }
  }

  /** @private */
  _startPing() {
    if (this._pingTimer !== null) clearInterval(this._pingTimer);
    this._lastPingAt = 0;
    this._pingTimer = setInterval(() => {
      // Dead if our previous ping got no answer (nor any other message) for a while. Measured from
      // the ping, not from the last message, so throttled timers in background tabs cannot misfire.
      const now = Date.now();
      if (this._lastPingAt > this._lastMessageAt && now - this._lastPingAt > PONG_TIMEOUT_MS) {
        this._connectionLost("no answer from the server");
        return;
      }
      if (this._send({ type: "ping" })) this._lastPingAt = now;
    }, PING_INTERVAL_MS);
  }

  /**
   * @private
   * @param {ClientMessage} message
   * @returns {boolean} whether it was handed to an open websocket
   */
  _send(message) {
    const ws = this._ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    try {
      ws.send(JSON.stringify(message));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * @private
   * @param {ClientMessage} message
   * @returns {boolean}
   */
  _sendInCall(message) {
    return this._joinedNow && this._send(message);
  }

  /** @private */
  _sendMediaState() {
    if (!this._joinedNow) return;
    const state = { audio: this._audioEnabled, video: this._videoEnabled };
    const last = this._sentMedia;
    if (last && last.audio === state.audio && last.video === state.video) return;
    if (this._send({ type: "media_state", ...state })) this._sentMedia = state;
  }

  /**
   * @private
   * @param {"audio" | "video"} kind
   * @returns {boolean}
   */
  _trackEnabled(kind) {
    const tracks = kind === "audio" ? this.stream.getAudioTracks() : this.stream.getVideoTracks();
    return tracks.some((track) => track.enabled);
  }

  /**
   * @private
   * @param {"audio" | "video"} kind
   * @returns {MediaStreamTrack | null}
   */
  _localTrack(kind) {
    const tracks = kind === "audio" ? this.stream.getAudioTracks() : this.stream.getVideoTracks();
    return tracks.find((track) => track.readyState !== "ended") ?? null;
  }

  // ------------------------------------------------------------------ messages

  /**
   * @private
   * @param {ServerMessage} message
   * @param {number} generation
   */
  _handleMessage(message, generation) {
    switch (message.type) {
      case "joined":
        this._onJoined(message);
        break;
      case "waiting":
        this._onWaiting(message);
        break;
      case "knock":
        if (message.participant && typeof message.participant.id === "string") {
          this._emit("knock", { participant: message.participant });
        }
        break;
      case "knock_resolved":
        if (typeof message.participant_id === "string") {
          this._emit("knock-resolved", { participantId: message.participant_id, admitted: message.admitted === true });
        }
        break;
      case "room_updated":
        if (message.room) this._emit("room-updated", { room: message.room });
        break;
      case "offer": {
        const chain = this._offerChain.then(() => this._handleOffer(message, generation));
        this._offerChain = chain.catch((error) => {
          if (generation !== this._generation || this._stopped) return;
          console.error("meetnow: could not answer offer", error);
          this._connectionLost("could not answer the server's offer");
        });
        break;
      }
      case "participant_joined":
        if (message.participant && message.participant.id !== this._participantId) {
          this._emit("participant-joined", { participant: message.participant });
        }
        break;
      case "participant_updated":
        if (!message.participant) break;
        if (message.participant.id === this._participantId) {
          this._host = message.participant.host === true;
          this._emit("self-updated", { participant: message.participant });
        } else {
          this._emit("participant-updated", { participant: message.participant });
        }
        break;
      case "participant_left":
        if (typeof message.participant_id === "string") {
          this._emit("participant-left", { participantId: message.participant_id });
        }
        break;
      case "pong":
        break;
      case "error": {
        const code = String(message.code);
        const text = typeof message.message === "string" ? message.message : code;
        if (message.fatal || TERMINAL_CODES.has(code)) {
          this._end(code, text, null);
        } else {
          this._emit("server-error", { code, message: text });
        }
        break;
      }
      case "room_closed":
        this._end("room_closed", `The meeting was closed (${message.reason}).`, message.reason ?? null);
        break;
      default:
        break;
    }
  }

  /**
   * In the lobby: nothing of the call yet (no peer connection); a host admits or denies us.
   * @private
   * @param {WaitingMessage} message
   */
  _onWaiting(message) {
    this._closePeerConnection();
    this._waiting = true;
    this._joinedNow = false;
    this._attempt = 0;
    this._reconnecting = false;
    this._emit("waiting", { room: message.room, rejoined: this._everJoined });
  }

  /**
   * @private
   * @param {JoinedMessage} message
   */
  _onJoined(message) {
    this._closePeerConnection();
    const pc = new RTCPeerConnection({
      iceServers: toIceServers(message.ice_servers),
      // "relay": media only through the TURN servers above (the server's
      // MEETNOW_ICE_TRANSPORT_POLICY); anything unknown keeps the browser's default.
      iceTransportPolicy: message.ice_transport_policy === "relay" ? "relay" : "all",
      bundlePolicy: "max-bundle",
    });
    this._pc = pc;
    pc.onconnectionstatechange = () => {
      if (pc !== this._pc) return;
      if (pc.connectionState === "failed") this._connectionLost("media connection failed");
    };
    // Same signal for browsers without connectionState.
    pc.oniceconnectionstatechange = () => {
      if (pc !== this._pc) return;
      if (pc.iceConnectionState === "failed") this._connectionLost("media connection failed");
    };

    this._participantId = message.participant_id;
    this._joinedNow = true;
    this._waiting = false;
    this._host = message.host === true;
    this._attempt = 0;
    const rejoined = this._everJoined;
    this._everJoined = true;
    this._emit("joined", {
      participantId: message.participant_id,
      host: this._host,
      room: message.room,
      participants: Array.isArray(message.participants) ? message.participants : [],
      waiting: this._host && Array.isArray(message.waiting) ? message.waiting : [],
      rejoined,
    });
    if (this._reconnecting) {
      this._reconnecting = false;
      if (rejoined) this._emit("reconnected", {});
    }
    // join announced which tracks exist; announce if some of them start disabled.
    this._sentMedia = {
      audio: this.stream.getAudioTracks().length > 0,
      video: this.stream.getVideoTracks().length > 0,
    };
    this._sendMediaState();
  }

  /**
   * Answer one offer. Called strictly one at a time (see _offerChain).
   * @private
   * @param {OfferMessage} message
   * @param {number} generation
   */
  async _handleOffer(message, generation) {
    const stale = () => generation !== this._generation || this._stopped;
    const pc = this._pc;
    if (!pc || stale()) return;

    await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
    if (stale()) return;

    const tracks = message.tracks && typeof message.tracks === "object" ? message.tracks : {};
    /** @type {Map<string, MediaStreamTrack[]>} */
    const remote = new Map();
    for (const transceiver of pc.getTransceivers()) {
      const mid = transceiver.mid;
      if (mid === null || isStopped(transceiver)) continue;
      const info = Object.prototype.hasOwnProperty.call(tracks, mid) ? tracks[mid] : undefined;
      if (!info) {
        transceiver.direction = "inactive";
        continue;
      }
      if (info.participant === this._participantId) {
        const track = this._localTrack(info.kind);
        if (track) {
          transceiver.direction = "sendonly";
          if (transceiver.sender.track !== track) await transceiver.sender.replaceTrack(track);
        } else {
          transceiver.direction = "inactive";
        }
      } else {
        transceiver.direction = "recvonly";
        const track = transceiver.receiver.track;
        const list = remote.get(info.participant) ?? [];
        list.push(track);
        remote.set(info.participant, list);
      }
      if (stale()) return;
    }

    const answer = await pc.createAnswer();
    if (stale()) return;
    await pc.setLocalDescription(answer);
    if (stale()) return;
    for (const transceiver of pc.getTransceivers()) {
      if (transceiver.direction === "sendonly" && transceiver.sender.track?.kind === "video") {
        await requestTemporalLayers(transceiver.sender);
      }
    }
    if (stale()) return;
    await waitForIceGathering(pc, ICE_GATHERING_TIMEOUT_MS);
    if (stale()) return;
    const sdp = pc.localDescription ? pc.localDescription.sdp : answer.sdp;
    if (!sdp) throw new Error("empty SDP answer");
    this._send({ type: "answer", revision: message.revision, sdp });
    this._updateRemoteStreams(remote);
  }

  /**
   * Hand out one MediaStream per remote participant; a new one whenever its set of tracks changes.
   * @private
   * @param {Map<string, MediaStreamTrack[]>} remote
   */
  _updateRemoteStreams(remote) {
    for (const participantId of [...this._remote.keys()]) {
      if (!remote.has(participantId)) {
        this._remote.delete(participantId);
        this._emit("remote-stream", { participantId, stream: null });
      }
    }
    for (const [participantId, tracks] of remote) {
      // Audio first, then video, each in m-line order.
      tracks.sort((a, b) => (a.kind === b.kind ? 0 : a.kind === "audio" ? -1 : 1));
      const key = tracks.map((track) => track.id).join(" ");
      const current = this._remote.get(participantId);
      if (current && current.key === key) continue;
      const stream = new MediaStream(tracks);
      this._remote.set(participantId, { key, stream });
      this._emit("remote-stream", { participantId, stream });
    }
  }

  /**
   * @private
   * @param {string} type
   * @param {object} detail
   */
  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
