// meetnow signaling + WebRTC client (no DOM): MeetnowCall, the one thing the page uses. The parts:
//   wire.js        the messages both ways (JSDoc types), session and host token checks
//   socket.js      the signaling websocket and its ping
//   peer.js        the peer connection: answering offers, remote streams
//   connection.js  joining, reconnecting with backoff, ending; dispatches the events below
//
// Speaks version 1 of the protocol described in docs/protocol.md: one websocket per participant,
// the server is always the SDP offerer, this client always answers (no trickle ICE: answers carry
// every candidate).
//
// Events dispatched by MeetnowCall (all CustomEvent; `detail` shown):
//   "waiting"             {room, rejoined}          in the lobby: a host must let us in ("joined"
//                         follows) or turn us away ("ended" with code "denied")
//   "joined"              {participantId, host, room, participants, waiting, handRaisedAt, rejoined}  (also after
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
//   "remote-screen"       {participantId, stream}   the screen that participant shares (video, perhaps
//                         its tab's audio), or null once they stop: its own tile
//   "chat"                {id, participantId, name, text, sentAt}  a chat message (ours too: the
//                         server's echo is our confirmation); name and text are untrusted
//   "speakers"            {dominant, speaking}      who speaks now (ids, ourselves included) and the
//                         dominant speaker (or null), as the relay hears them
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

import { CallConnection } from "./connection.js";

export { PROTOCOL_VERSION, isValidHostToken, isValidSessionId, randomSessionId, websocketUrl } from "./wire.js";

/**
 * The page's names for the protocol's types.
 * @typedef {import("./wire.js").MediaState} MediaState
 * @typedef {import("./wire.js").ParticipantInfo} ParticipantInfo
 * @typedef {import("./wire.js").RoomInfo} RoomInfo
 * @typedef {import("./wire.js").KnockInfo} KnockInfo
 * @typedef {import("./wire.js").JoinedDetail} JoinedDetail
 * @typedef {import("./wire.js").WaitingDetail} WaitingDetail
 * @typedef {import("./wire.js").KnockDetail} KnockDetail
 * @typedef {import("./wire.js").KnockResolvedDetail} KnockResolvedDetail
 * @typedef {import("./wire.js").RoomUpdatedDetail} RoomUpdatedDetail
 * @typedef {import("./wire.js").ParticipantDetail} ParticipantDetail
 * @typedef {import("./wire.js").ParticipantLeftDetail} ParticipantLeftDetail
 * @typedef {import("./wire.js").RemoteStreamDetail} RemoteStreamDetail
 * @typedef {import("./wire.js").SpeakersDetail} SpeakersDetail
 * @typedef {import("./wire.js").ChatDetail} ChatDetail
 * @typedef {import("./wire.js").ReconnectingDetail} ReconnectingDetail
 * @typedef {import("./wire.js").ServerErrorDetail} ServerErrorDetail
 * @typedef {import("./wire.js").EndedDetail} EndedDetail
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

/** One group call from this browser: its connection (connection.js) and what the page can ask of it. */
export class MeetnowCall extends CallConnection {
  /** Our participant id in the room (changes on each reconnect), or null before `joined`. */
  get participantId() {
    return this._participantId;
  }

  /** The peer connection to the relay now (null before `joined`, and between a connection lost and
   * the next one): the page reads its stats and swaps its senders' tracks (devices.js, quality.js). */
  get peerConnection() {
    return this._pc;
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

  /** What we share right now (display video, perhaps tab audio), or null. */
  get screenStream() {
    return this._screen;
  }

  /**
   * Share a screen: the server answers with an offer holding our screen's m-line(s), on which the
   * stream's tracks go out. Kept across reconnects (the rejoin's `join` announces it) until
   * stopScreenShare. A `too_many_screen_shares` "server-error" means the room's cap was reached.
   * @param {MediaStream} stream from getDisplayMedia
   * @returns {boolean} whether the request went out now (else it goes with the next join)
   */
  shareScreen(stream) {
    this._screen = stream;
    const sharing = this._screenSharing();
    return this._sendInCall({ type: "screen_share", sharing: sharing.video, audio: sharing.audio });
  }

  /**
   * Stop sharing: our screen's m-lines go inactive for everyone. The tracks are left to the caller.
   * @param {{tellServer?: boolean}} [options] false when the server refused the share anyway
   */
  stopScreenShare(options = {}) {
    if (!this._screen) return;
    this._screen = null;
    if (options.tellServer !== false) this._sendInCall({ type: "screen_share", sharing: false, audio: false });
  }

  // ------------------------------------------------------------------ chat and hands
  // Each returns whether it was sent. A chat message comes back as a "chat" event (our echo) or a
  // "server-error" (message_too_long, chat_rate_limited, invalid_message); a hand as a
  // "self-updated" (ours) or "participant-updated" with `hand_raised_at`.

  /** @param {string} text sent exactly as typed (the server counts code points and refuses blanks) */
  sendChat(text) {
    return this._sendInCall({ type: "chat", text });
  }

  /** @param {boolean} raised */
  raiseHand(raised) {
    return this._sendInCall({ type: "raise_hand", raised });
  }

  /** Host: lower someone's raised hand. @param {string} participantId */
  lowerHand(participantId) {
    return this._sendInCall({ type: "lower_hand", participant_id: participantId });
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
}
