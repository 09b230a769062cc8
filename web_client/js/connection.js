// One call's connection from this browser: the signaling websocket, joining (or waiting in the
// lobby), the peer connection, and reconnecting with backoff until the call ends. It dispatches the
// events listed in protocol.js; MeetnowCall (protocol.js) adds the commands. No DOM.

import { t } from "./i18n.js";
import { RemoteStreams, answerOffer, closePeerConnection, createPeerConnection } from "./peer.js";
import { SignalingSocket, roomPageStatus } from "./socket.js";
import { eventForMessage, isValidHostToken, joinMessage, websocketUrl } from "./wire.js";

/**
 * @typedef {import("./wire.js").ServerMessage} ServerMessage
 * @typedef {import("./wire.js").ClientMessage} ClientMessage
 * @typedef {import("./wire.js").JoinedMessage} JoinedMessage
 * @typedef {import("./wire.js").WaitingMessage} WaitingMessage
 * @typedef {import("./wire.js").OfferMessage} OfferMessage
 * @typedef {import("./wire.js").TrackSource} TrackSource
 * @typedef {import("./protocol.js").MeetnowCallOptions} MeetnowCallOptions
 */

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 5_000;
/** Close code the server uses when the same session joined again from another connection. */
const CLOSE_REPLACED = 4000;
/** Error codes after which joining again cannot help: they end the call even if not marked fatal. */
const TERMINAL_CODES = new Set(["locked", "removed", "denied", "room_ended", "room_not_found", "unsupported_version"]);

export class CallConnection extends EventTarget {
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

    /** @protected */ this._audioEnabled = this._trackEnabled("audio");
    /** @protected */ this._videoEnabled = this._trackEnabled("video");

    /** @private @type {SignalingSocket | null} */ this._socket = null;
    /** @protected @type {RTCPeerConnection | null} */ this._pc = null;
    /** Bumped whenever the current websocket/pc pair is torn down; stale callbacks compare it.
     * @private */
    this._generation = 0;
    /** @private */ this._started = false;
    /** Left, or ended for good: never reconnect again. @private */
    this._stopped = false;
    /** @private */ this._everJoined = false;
    /** @protected */ this._joinedNow = false;
    /** @private */ this._reconnecting = false;
    /** @private */ this._attempt = 0;
    /** @private @type {ReturnType<typeof setTimeout> | null} */ this._retryTimer = null;
    /** @private @type {Promise<void>} */ this._offerChain = Promise.resolve();
    /** @protected @type {string | null} */ this._participantId = null;
    /** @protected */ this._host = false;
    /** @protected */ this._waiting = false;
    /** @private @type {{audio: boolean, video: boolean} | null} */ this._sentMedia = null;
    /** Per remote participant: the stream handed to the UI. @private @readonly */
    this._remote = new RemoteStreams((participantId, stream) => this._emit("remote-stream", { participantId, stream }));
    /** Per remote participant sharing a screen: its screen's stream. @private @readonly */
    this._screens = new RemoteStreams((participantId, stream) => this._emit("remote-screen", { participantId, stream }));
    /** What we share (display video, perhaps tab audio), or null; kept across reconnects. @protected
     * @type {MediaStream | null} */
    this._screen = null;

    /** @private */ this._onOnline = () => {
      // Back online while waiting to retry: retry now.
      if (this._retryTimer !== null && !this._stopped) {
        clearTimeout(this._retryTimer);
        this._retryTimer = null;
        this._connect();
      }
    };
  }

  /** Open the websocket and join. Call once. */
  start() {
    if (this._started) return;
    this._started = true;
    if (typeof RTCPeerConnection !== "function" || typeof WebSocket !== "function") {
      this._end("webrtc_unsupported", t("page.ended.unsupported"), null);
      return;
    }
    if (typeof globalThis.addEventListener === "function") {
      globalThis.addEventListener("online", this._onOnline);
    }
    this._connect();
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
    const current = () => generation === this._generation;
    try {
      this._socket = new SignalingSocket(this._url, {
        onOpen: () => {
          if (current()) this._sendJoin();
        },
        onMessage: (message) => {
          if (current()) this._handleMessage(message, generation);
        },
        onClose: (code, opened) => {
          if (current() && !this._stopped) this._socketClosed(code, opened, generation);
        },
        onDead: () => this._connectionLost("no answer from the server"),
      });
    } catch (error) {
      this._connectionLost(`cannot open websocket: ${String(error)}`);
    }
  }

  /** @private */
  _sendJoin() {
    this._send(joinMessage(this.name, this.session, this.stream, this._hostToken, this._screenSharing()));
  }

  /**
   * @private
   * @param {number} code
   * @param {boolean} opened
   * @param {number} generation
   */
  _socketClosed(code, opened, generation) {
    if (code === CLOSE_REPLACED) {
      this._end("replaced", t("page.ended.replaced"), null);
    } else if (!opened) {
      void this._checkRoomThenRetry(generation);
    } else {
      this._connectionLost(`websocket closed (${code})`);
    }
  }

  /**
   * The websocket never opened: a room that is gone answers 404 before the upgrade, which the
   * browser does not expose. Ask the room page (no side effects) to tell "gone" from "network".
   * @private
   * @param {number} generation
   */
  async _checkRoomThenRetry(generation) {
    const status = await roomPageStatus(this._roomPageUrl);
    if (generation !== this._generation || this._stopped) return;
    if (status === 410) {
      this._end("room_ended", t("page.ended.ended"), null);
    } else if (status === 404) {
      this._end("room_not_found", t("page.ended.not_found"), null);
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
    const socket = this._socket;
    this._socket = null;
    if (socket) socket.close();
    this._closePeerConnection();
    this._remote.clear();
    this._screens.clear();
  }

  /** @private */
  _closePeerConnection() {
    const pc = this._pc;
    this._pc = null;
    if (pc) closePeerConnection(pc);
  }

  /**
   * @protected
   * @param {ClientMessage} message
   * @returns {boolean} whether it was handed to an open websocket
   */
  _send(message) {
    return this._socket !== null && this._socket.send(message);
  }

  /**
   * @protected
   * @param {ClientMessage} message
   * @returns {boolean}
   */
  _sendInCall(message) {
    return this._joinedNow && this._send(message);
  }

  /** @protected */
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
   * The live track we send on our m-line of this source, if any.
   * @private
   * @param {TrackSource} source
   * @returns {MediaStreamTrack | null}
   */
  _localTrack(source) {
    const screen = this._screen;
    /** @type {MediaStreamTrack[]} */
    let tracks;
    if (source === "screen") tracks = screen ? screen.getVideoTracks() : [];
    else if (source === "screen_audio") tracks = screen ? screen.getAudioTracks() : [];
    else tracks = source === "microphone" ? this.stream.getAudioTracks() : this.stream.getVideoTracks();
    return tracks.find((track) => track.readyState !== "ended") ?? null;
  }

  /**
   * Which tracks of our screen share are live (what `join` and `screen_share` announce).
   * @protected
   * @returns {{video: boolean, audio: boolean}}
   */
  _screenSharing() {
    const video = this._localTrack("screen") !== null;
    return { video, audio: video && this._localTrack("screen_audio") !== null };
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
      case "offer":
        this._queueOffer(message, generation);
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
        this._end("room_closed", t("page.ended.closed", { reason: String(message.reason) }), message.reason ?? null);
        break;
      default: {
        if (message.type === "participant_updated" && message.participant?.id === this._participantId) {
          this._host = message.participant.host === true;
        }
        const event = eventForMessage(message, this._participantId);
        if (event) this._emit(event.type, event.detail);
      }
    }
  }

  /**
   * Offers are answered strictly one at a time, in order.
   * @private
   * @param {OfferMessage} message
   * @param {number} generation
   */
  _queueOffer(message, generation) {
    const chain = this._offerChain.then(() => this._handleOffer(message, generation));
    this._offerChain = chain.catch((error) => {
      if (generation !== this._generation || this._stopped) return;
      console.error("meetnow: could not answer offer", error);
      this._connectionLost("could not answer the server's offer");
    });
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
    this._pc = createPeerConnection(message, (pc) => {
      if (pc === this._pc) this._connectionLost("media connection failed");
    });

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
      handRaisedAt: typeof message.hand_raised_at === "number" ? message.hand_raised_at : null,
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
    const answer = await answerOffer(pc, message, {
      participantId: this._participantId,
      localTrack: (source) => this._localTrack(source),
      stale,
    });
    if (!answer) return;
    this._send({ type: "answer", revision: message.revision, sdp: answer.sdp });
    this._remote.update(answer.remote.cameras);
    this._screens.update(answer.remote.screens);
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
