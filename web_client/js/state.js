// The room page's one state object: everything the page remembers between events lives here, so
// every module reads and changes the same, typed record (and nothing hides in module variables).

import { createChatState } from "./chat.js";
import { loadSessionId, readRoomId, takeHostToken } from "./identity.js";
import { createRosterState } from "./roster.js";

/**
 * @typedef {import("./protocol.js").MeetnowCall} MeetnowCall
 * @typedef {import("./tiles.js").Tile} Tile
 * @typedef {import("./screen-tiles.js").ScreenTile} ScreenTile
 * @typedef {import("./muted-talk.js").MutedTalkWatch} MutedTalkWatch
 * @typedef {import("./host.js").Knock} Knock
 * @typedef {import("./media.js").MediaResult} MediaResult
 * @typedef {import("./notices.js").Notice} Notice
 * @typedef {import("./chat.js").ChatState} ChatState
 * @typedef {import("./roster.js").RosterState} RosterState
 * @typedef {import("./quality.js").QualityState} QualityState
 *
 * @typedef {object} RoomPageState
 * @property {string} roomId from the page's path; never changes
 * @property {string | null} hostToken our host secret for this room, if any
 * @property {string} sessionId kept across reloads; replaced if another tab already uses it
 * @property {boolean} sessionTaken another tab of this browser answered that it uses our session
 * @property {Promise<void>} sessionChecked settles once the other tabs had their chance to answer
 * @property {MediaStream} localStream microphone and camera (possibly without one or both tracks)
 * @property {Promise<MediaResult> | null} mediaPromise the device request in flight or done
 * @property {boolean} mediaSettled the device request has been answered
 * @property {boolean} wantAudio what the user wants (the toggles); effective only if the track exists
 * @property {boolean} wantVideo
 * @property {MeetnowCall | null} call the current call; events of any other are stale
 * @property {boolean} inCall between Join and leaving or the end of the call
 * @property {boolean} joining a Join click is waiting for the devices
 * @property {boolean} everJoined the current call was joined at least once (later losses are reconnects)
 * @property {string} displayName
 * @property {Tile | null} localTile
 * @property {Map<string, Tile>} tiles remote tiles by participant id
 * @property {Map<string, MediaStream>} remoteStreams by participant id, also before its tile exists
 * @property {Map<string, ScreenTile>} screenTiles the screens shared, by sharer's id (ours under "")
 * @property {MediaStream | null} screenStream what we share (getDisplayMedia), or null
 * @property {boolean} screenPicking a getDisplayMedia prompt is open
 * @property {Set<string>} speaking participant ids speaking now (ours included), as the relay says
 * @property {string | null} featuredSpeaker the remote participant speaker view shows large: the
 *   last dominant speaker other than us
 * @property {boolean} speakerView speaker view rather than the grid
 * @property {MutedTalkWatch | null} mutedTalk listens for talking while we are muted
 * @property {boolean} amHost we have host rights right now
 * @property {boolean} mutedByHost a host stopped forwarding our audio
 * @property {boolean} endedByMe this page asked to end the meeting for everyone
 * @property {{locked: boolean, lobby: boolean}} room the room's settings as last announced
 * @property {Map<string, Knock>} knocks hosts: people waiting in the lobby, by participant id
 * @property {Map<string, Notice>} notices shown in the status area, by key
 * @property {ChatState} chat the chat since we joined (chat.js, chat-view.js)
 * @property {RosterState} roster who is in the call, hands, the lobby's names (roster.js)
 * @property {number} nextUid for element ids (aria-describedby); participant ids never go into an id
 * @property {Promise<void>} deviceWork device switches, one at a time (devices.js)
 * @property {string} speakerId the chosen audio output ("" = the browser's default)
 * @property {QualityState} quality connection quality sampling (quality.js)
 */

const roomId = readRoomId();

/** @type {RoomPageState} */
export const state = {
  roomId,
  hostToken: takeHostToken(roomId),
  sessionId: loadSessionId(roomId),
  sessionTaken: false,
  sessionChecked: Promise.resolve(),
  localStream: new MediaStream(),
  mediaPromise: null,
  mediaSettled: false,
  wantAudio: true,
  wantVideo: true,
  call: null,
  inCall: false,
  joining: false,
  everJoined: false,
  displayName: "",
  localTile: null,
  tiles: new Map(),
  remoteStreams: new Map(),
  screenTiles: new Map(),
  screenStream: null,
  screenPicking: false,
  speaking: new Set(),
  featuredSpeaker: null,
  speakerView: false,
  mutedTalk: null,
  amHost: false,
  mutedByHost: false,
  endedByMe: false,
  room: { locked: false, lobby: false },
  knocks: new Map(),
  notices: new Map(),
  chat: createChatState(),
  roster: createRosterState(),
  nextUid: 0,
  deviceWork: Promise.resolve(),
  speakerId: "",
  quality: { pc: null, history: new Map(), call: null, poorSince: null, busy: false },
};

export function hasAudioTrack() {
  return state.localStream.getAudioTracks().length > 0;
}

export function hasVideoTrack() {
  return state.localStream.getVideoTracks().length > 0;
}
