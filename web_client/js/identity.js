// Who this page is in its room: the room id from the address, the host token (from the host link or
// this browser's storage) and the session id kept across reloads. Functions of the room id only: the
// page's state (state.js) is built from them.

// wire.js, not protocol.js: this module must not wait for the language catalog (i18n.js loads it
// with a top-level await), so that host-link.js can take the token out of the address at once.
import { isValidHostToken, isValidSessionId, randomSessionId } from "./wire.js";

/**
 * The room id: the last segment of the page's path (/r/<id>).
 * @returns {string}
 */
export function readRoomId() {
  const segment = location.pathname.split("/").filter(Boolean).pop() ?? "";
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** @param {string} roomId */
const hostKey = (roomId) => `meetnow.host.${roomId}`;
/** @param {string} roomId */
const sessionKey = (roomId) => `meetnow.session.${roomId}`;

/**
 * The host link is the room link plus `#host=TOKEN`. Move the token into this browser's storage and
 * drop the fragment from the address bar and the history entry at once, so the address bar, "Copy
 * link", bookmarks and screen shares only ever show the plain room link. The token only ever goes
 * into the `join` message.
 * @param {string} roomId
 * @returns {string | null}
 */
export function takeHostToken(roomId) {
  if (takenToken !== undefined) return takenToken;
  takenToken = readHostToken(roomId);
  return takenToken;
}

/** The first answer of takeHostToken on this page (the fragment is gone after it).
 * @type {string | null | undefined} */
let takenToken;

/**
 * @param {string} roomId
 * @returns {string | null}
 */
function readHostToken(roomId) {
  /** @type {string | null} */
  let fromLink = null;
  if (location.hash.length > 1) {
    const params = new URLSearchParams(location.hash.slice(1));
    if (params.has("host")) {
      fromLink = params.get("host");
      history.replaceState(history.state, "", location.pathname + location.search);
    }
  }
  if (isValidHostToken(fromLink)) {
    try {
      localStorage.setItem(hostKey(roomId), fromLink);
    } catch {
      // storage unavailable: host for this page only
    }
    return fromLink;
  }
  try {
    const stored = localStorage.getItem(hostKey(roomId));
    if (isValidHostToken(stored)) return stored;
  } catch {
    // storage unavailable
  }
  return null;
}

/**
 * The room is gone for good: drop its stored host token.
 * @param {string} roomId
 */
export function forgetStoredHostToken(roomId) {
  try {
    localStorage.removeItem(hostKey(roomId));
  } catch {
    // storage unavailable
  }
}

/**
 * This tab's session id for the room (sessionStorage survives reloads), or a fresh one.
 * @param {string} roomId
 * @returns {string}
 */
export function loadSessionId(roomId) {
  let stored = null;
  try {
    stored = sessionStorage.getItem(sessionKey(roomId));
  } catch {
    // storage unavailable: a fresh id per page
  }
  if (isValidSessionId(stored)) return stored;
  return newSessionId(roomId);
}

/**
 * A fresh session id, remembered for this tab.
 * @param {string} roomId
 * @returns {string}
 */
export function newSessionId(roomId) {
  const id = randomSessionId(24);
  try {
    sessionStorage.setItem(sessionKey(roomId), id);
  } catch {
    // ignore
  }
  return id;
}

const NAME_KEY = "meetnow.name";

/** The name typed last time, in any room, or "". */
export function loadDisplayName() {
  try {
    return localStorage.getItem(NAME_KEY) ?? "";
  } catch {
    return ""; // storage unavailable
  }
}

/** @param {string} name */
export function saveDisplayName(name) {
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    // private mode: not remembered
  }
}
