// The protocol's wire format (version 1, docs/protocol.md): the messages both ways as JSDoc types,
// the events MeetnowCall dispatches, and the checks on values that go into `join`. No DOM.

export const PROTOCOL_VERSION = 1;

/**
 * @typedef {{audio: boolean, video: boolean, screen?: boolean}} MediaState
 * @typedef {{id: string, name: string, media: MediaState, host?: boolean, muted_by_host?: boolean,
 *   hand_raised_at?: number | null}} ParticipantInfo hand_raised_at: when the hand went up (server
 *   time, ms since the epoch), or null
 * @typedef {{id: string, topic: string | null, url: string, max_participants: number,
 *   locked?: boolean, lobby?: boolean}} RoomInfo
 * @typedef {{id: string, name: string}} KnockInfo
 * @typedef {{urls: string[] | string, username?: string | null, credential?: string | null}} IceServerInfo
 * @typedef {"camera" | "microphone" | "screen" | "screen_audio"} TrackSource
 * @typedef {{participant: string, kind: "audio" | "video", source?: TrackSource}} TrackInfo
 *
 * @typedef {{type: "joined", version: number, participant_id: string, host?: boolean, room: RoomInfo,
 *   participants: ParticipantInfo[], waiting?: KnockInfo[], hand_raised_at?: number | null,
 *   ice_servers: IceServerInfo[], ice_transport_policy?: "all" | "relay"}} JoinedMessage
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
 * @typedef {{type: "speakers", dominant: string | null, speaking: string[]}} SpeakersMessage
 * @typedef {{type: "chat", id: string, participant_id: string, name: string, text: string,
 *   sent_at: number}} ChatBroadcastMessage to everyone in the call, the sender included
 * @typedef {JoinedMessage | WaitingMessage | KnockMessage | KnockResolvedMessage | RoomUpdatedMessage
 *   | OfferMessage | ParticipantJoinedMessage | ParticipantUpdatedMessage | ParticipantLeftMessage
 *   | PongMessage | ErrorMessage | RoomClosedMessage | SpeakersMessage | ChatBroadcastMessage} ServerMessage
 *
 * @typedef {{type: "join", version: number, name: string, session: string, audio: boolean, video: boolean,
 *     host_token?: string, screen?: boolean, screen_audio?: boolean}
 *   | {type: "answer", revision: number, sdp: string}
 *   | {type: "media_state", audio: boolean, video: boolean}
 *   | {type: "screen_share", sharing: boolean, audio: boolean}
 *   | {type: "ping"}
 *   | {type: "leave"}
 *   | {type: "admit" | "deny" | "remove" | "make_host", participant_id: string}
 *   | {type: "mute", participant_id: string, muted: boolean}
 *   | {type: "lock", locked: boolean}
 *   | {type: "set_lobby", enabled: boolean}
 *   | {type: "end_meeting"}
 *   | {type: "chat", text: string}
 *   | {type: "raise_hand", raised: boolean}
 *   | {type: "lower_hand", participant_id: string}} ClientMessage
 *
 * @typedef {{participantId: string, host: boolean, room: RoomInfo, participants: ParticipantInfo[],
 *   waiting: KnockInfo[], handRaisedAt: number | null, rejoined: boolean}} JoinedDetail
 * @typedef {{room: RoomInfo, rejoined: boolean}} WaitingDetail
 * @typedef {{participant: KnockInfo}} KnockDetail
 * @typedef {{participantId: string, admitted: boolean}} KnockResolvedDetail
 * @typedef {{room: RoomInfo}} RoomUpdatedDetail
 * @typedef {{participant: ParticipantInfo}} ParticipantDetail
 * @typedef {{participantId: string}} ParticipantLeftDetail
 * @typedef {{participantId: string, stream: MediaStream | null}} RemoteStreamDetail
 * @typedef {{dominant: string | null, speaking: string[]}} SpeakersDetail
 * @typedef {{id: string, participantId: string, name: string, text: string, sentAt: number}} ChatDetail
 * @typedef {{attempt: number, delayMs: number, reason: string}} ReconnectingDetail
 * @typedef {{code: string, message: string}} ServerErrorDetail
 * @typedef {{code: string, message: string, reason: string | null}} EndedDetail
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

/**
 * A server message from a websocket frame, or null for anything else (binary, not JSON, no type).
 * @param {unknown} data
 * @returns {ServerMessage | null}
 */
export function parseServerMessage(data) {
  if (typeof data !== "string") return null;
  /** @type {unknown} */
  let message;
  try {
    message = JSON.parse(data);
  } catch {
    return null;
  }
  return looksLikeMessage(message) ? message : null;
}

/**
 * The event for a server message that the page only needs to hear about (room and participant
 * news), or null: for another kind, for one about ourselves that the page learns otherwise, or for
 * one missing its fields. `selfId` is our participant id.
 * @param {ServerMessage} message
 * @param {string | null} selfId
 * @returns {{type: string, detail: object} | null}
 */
export function eventForMessage(message, selfId) {
  switch (message.type) {
    case "knock":
      if (!message.participant || typeof message.participant.id !== "string") return null;
      return { type: "knock", detail: { participant: message.participant } };
    case "knock_resolved":
      if (typeof message.participant_id !== "string") return null;
      return { type: "knock-resolved", detail: { participantId: message.participant_id, admitted: message.admitted === true } };
    case "room_updated":
      return message.room ? { type: "room-updated", detail: { room: message.room } } : null;
    case "participant_joined":
      if (!message.participant || message.participant.id === selfId) return null;
      return { type: "participant-joined", detail: { participant: message.participant } };
    case "participant_updated":
      if (!message.participant) return null;
      // About us: a host changed us (made us a host, muted us).
      return {
        type: message.participant.id === selfId ? "self-updated" : "participant-updated",
        detail: { participant: message.participant },
      };
    case "participant_left":
      if (typeof message.participant_id !== "string") return null;
      return { type: "participant-left", detail: { participantId: message.participant_id } };
    case "speakers": {
      // Ourselves included: the page marks its own tile too.
      const speaking = Array.isArray(message.speaking) ? message.speaking.filter((id) => typeof id === "string") : [];
      const dominant = typeof message.dominant === "string" ? message.dominant : null;
      return { type: "speakers", detail: { dominant, speaking } };
    }
    case "chat": {
      // Untrusted text: the page shows name and text with textContent only.
      const { id, participant_id: participantId, name, text, sent_at: sentAt } = message;
      if (typeof id !== "string" || typeof participantId !== "string" || typeof text !== "string") return null;
      const sender = typeof name === "string" ? name : "";
      return { type: "chat", detail: { id, participantId, name: sender, text, sentAt: Number(sentAt) || Date.now() } };
    }
    default:
      return null;
  }
}

/**
 * The `join` message: who we are and which tracks we have (the host token only if we hold one;
 * `screen` and `screen_audio` only while we share, so that a rejoin's first offer carries our
 * screen's m-lines and the share survives the reconnect).
 * @param {string} name
 * @param {string} session
 * @param {MediaStream} stream
 * @param {string | null} hostToken
 * @param {{video: boolean, audio: boolean}} [sharing] the screen share's live tracks
 * @returns {ClientMessage}
 */
export function joinMessage(name, session, stream, hostToken, sharing = { video: false, audio: false }) {
  /** @type {ClientMessage} */
  const join = {
    type: "join",
    version: PROTOCOL_VERSION,
    name,
    session,
    audio: stream.getAudioTracks().length > 0,
    video: stream.getVideoTracks().length > 0,
  };
  if (hostToken !== null) join.host_token = hostToken;
  if (sharing.video) {
    join.screen = true;
    if (sharing.audio) join.screen_audio = true;
  }
  return join;
}
