// meetnow room page: pre-join screen, lobby wait, call grid, controls, host controls. UI only; the
// protocol lives in protocol.js. Participant names are untrusted: they only ever go through
// textContent (or attribute values set with setAttribute).

import { MeetnowCall, isValidHostToken, isValidSessionId, randomSessionId } from "./protocol.js";

// ------------------------------------------------------------------ room id and host token (first)

const roomId = (() => {
  const segment = location.pathname.split("/").filter(Boolean).pop() ?? "";
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
})();
const hostKey = `meetnow.host.${roomId}`;

/**
 * The host link is the room link plus `#host=TOKEN`. Move the token into this browser's storage and
 * drop the fragment from the address bar and the history entry at once, so the address bar, "Copy
 * link", bookmarks and screen shares only ever show the plain room link. The token only ever goes
 * into the `join` message.
 * @returns {string | null}
 */
function takeHostToken() {
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
      localStorage.setItem(hostKey, fromLink);
    } catch {
      // storage unavailable: host for this page only
    }
    return fromLink;
  }
  try {
    const stored = localStorage.getItem(hostKey);
    if (isValidHostToken(stored)) return stored;
  } catch {
    // storage unavailable
  }
  return null;
}

/** @type {string | null} */
let hostToken = takeHostToken();

/** The room is gone for good: its host token is of no use any more. */
function forgetHostToken() {
  hostToken = null;
  try {
    localStorage.removeItem(hostKey);
  } catch {
    // storage unavailable
  }
}

/**
 * @typedef {import("./protocol.js").ParticipantInfo} ParticipantInfo
 * @typedef {import("./protocol.js").MediaState} MediaState
 * @typedef {import("./protocol.js").JoinedDetail} JoinedDetail
 * @typedef {import("./protocol.js").ParticipantDetail} ParticipantDetail
 * @typedef {import("./protocol.js").ParticipantLeftDetail} ParticipantLeftDetail
 * @typedef {import("./protocol.js").RemoteStreamDetail} RemoteStreamDetail
 * @typedef {import("./protocol.js").ReconnectingDetail} ReconnectingDetail
 * @typedef {import("./protocol.js").ServerErrorDetail} ServerErrorDetail
 * @typedef {import("./protocol.js").EndedDetail} EndedDetail
 * @typedef {import("./protocol.js").WaitingDetail} WaitingDetail
 * @typedef {import("./protocol.js").KnockInfo} KnockInfo
 * @typedef {import("./protocol.js").KnockDetail} KnockDetail
 * @typedef {import("./protocol.js").KnockResolvedDetail} KnockResolvedDetail
 * @typedef {import("./protocol.js").RoomUpdatedDetail} RoomUpdatedDetail
 * @typedef {import("./protocol.js").RoomInfo} RoomInfo
 *
 * @typedef {object} TileMenu host actions on a remote tile (a disclosure: toggle + panel)
 * @property {HTMLElement} wrap
 * @property {HTMLButtonElement} toggle
 * @property {HTMLElement} panel
 * @property {HTMLButtonElement} mute
 * @property {HTMLButtonElement} makeHost
 * @property {HTMLButtonElement} remove
 *
 * @typedef {object} Tile
 * @property {string} id participant id ("" for the local tile before `joined`)
 * @property {HTMLElement} root
 * @property {HTMLVideoElement} video
 * @property {HTMLElement} nameEl
 * @property {HTMLElement} avatar
 * @property {HTMLElement} micOff
 * @property {HTMLElement} hostBadge
 * @property {HTMLElement} mutedBadge
 * @property {TileMenu | null} menu
 * @property {string} name
 * @property {boolean} host
 * @property {boolean} mutedByHost
 *
 * @typedef {object} Knock
 * @property {HTMLElement} root
 * @property {HTMLButtonElement[]} buttons
 * @property {ReturnType<typeof setTimeout> | null} timer
 *
 * @typedef {object} MediaResult
 * @property {MediaStream} stream
 * @property {string | null} notice
 */

const NAME_KEY = "meetnow.name";
const MAX_NAME_LENGTH = 64;

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @param {{new (): T, prototype: T}} type
 * @returns {T}
 */
function byId(id, type) {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`meetnow: #${id} is missing from the page`);
  return element;
}

const ui = {
  topic: byId("room-topic", HTMLElement),
  lockedBadge: byId("locked-badge", HTMLElement),
  notices: byId("notices", HTMLElement),
  prejoin: byId("prejoin", HTMLElement),
  preview: byId("preview", HTMLVideoElement),
  previewOff: byId("preview-off", HTMLElement),
  prejoinMic: byId("prejoin-mic", HTMLButtonElement),
  prejoinCam: byId("prejoin-cam", HTMLButtonElement),
  joinForm: byId("join-form", HTMLFormElement),
  nameInput: byId("name-input", HTMLInputElement),
  joinButton: byId("join-button", HTMLButtonElement),
  hostHint: byId("host-hint", HTMLElement),
  waiting: byId("waiting", HTMLElement),
  waitingTopic: byId("waiting-topic", HTMLElement),
  waitingPreview: byId("waiting-preview", HTMLVideoElement),
  waitingLeaveButton: byId("waiting-leave-button", HTMLButtonElement),
  call: byId("call", HTMLElement),
  hostBar: byId("host-bar", HTMLElement),
  lockButton: byId("lock-button", HTMLButtonElement),
  lobbyButton: byId("lobby-button", HTMLButtonElement),
  endButton: byId("end-button", HTMLButtonElement),
  endConfirm: byId("end-confirm", HTMLElement),
  endConfirmButton: byId("end-confirm-button", HTMLButtonElement),
  endCancelButton: byId("end-cancel-button", HTMLButtonElement),
  lobbyPanel: byId("lobby-panel", HTMLElement),
  lobbyCount: byId("lobby-count", HTMLElement),
  lobbyList: byId("lobby-list", HTMLElement),
  grid: byId("grid", HTMLElement),
  micButton: byId("mic-button", HTMLButtonElement),
  camButton: byId("cam-button", HTMLButtonElement),
  copyButton: byId("copy-button", HTMLButtonElement),
  copyFallback: byId("copy-fallback", HTMLInputElement),
  leaveButton: byId("leave-button", HTMLButtonElement),
  left: byId("left", HTMLElement),
  rejoinButton: byId("rejoin-button", HTMLButtonElement),
  ended: byId("ended", HTMLElement),
  endedTitle: byId("ended-title", HTMLElement),
  endedText: byId("ended-text", HTMLElement),
  retryButton: byId("retry-button", HTMLButtonElement),
};

const sessionKey = `meetnow.session.${roomId}`;

// ------------------------------------------------------------------ state

/** @type {MediaStream} */
let localStream = new MediaStream();
/** @type {Promise<MediaResult> | null} */
let mediaPromise = null;
let mediaSettled = false;
/** What the user wants (the toggles); effective only if the track exists. */
let wantAudio = true;
let wantVideo = true;
/** @type {MeetnowCall | null} */
let call = null;
let inCall = false;
let joining = false;
let displayName = "";
/** @type {Tile | null} */
let localTile = null;
/** @type {Map<string, Tile>} */
const tiles = new Map();
/** @type {Map<string, MediaStream>} */
const remoteStreams = new Map();
/** We have host rights right now. */
let amHost = false;
/** A host stopped forwarding our audio. */
let mutedByHost = false;
/** This page asked to end the meeting for everyone. */
let endedByMe = false;
/** @type {{locked: boolean, lobby: boolean}} */
let roomState = { locked: false, lobby: false };
/** Hosts: people waiting in the lobby, by participant id. @type {Map<string, Knock>} */
const knocks = new Map();
/** For element ids (aria-describedby); participant ids never go into an id. */
let nextUid = 0;

// ------------------------------------------------------------------ small helpers

/** @param {HTMLElement} screen */
function showScreen(screen) {
  for (const element of [ui.prejoin, ui.waiting, ui.call, ui.left, ui.ended]) element.hidden = element !== screen;
  document.body.dataset.screen = screen.id;
}

/**
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElement}
 */
function el(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}

/**
 * @param {string} text
 * @param {string} [className]
 * @returns {HTMLButtonElement}
 */
function makeButton(text, className = "button button--small") {
  const button = document.createElement("button");
  button.type = "button";
  button.className = className;
  button.textContent = text;
  return button;
}

/** @param {string | null | undefined} topic */
function showTopic(topic) {
  const text = topic ? topic : "";
  ui.topic.textContent = text;
  document.title = text ? `${text} · meetnow` : "meetnow";
}

/** @param {string} name */
function initials(name) {
  const words = name.trim().split(/\s+/).filter(Boolean);
  const letters = words.slice(0, 2).map((word) => Array.from(word)[0] ?? "");
  return letters.join("").toUpperCase() || "?";
}

/** @param {string} text */
function hue(text) {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (hash * 31 + text.charCodeAt(i)) >>> 0;
  return hash % 360;
}

function hasAudioTrack() {
  return localStream.getAudioTracks().length > 0;
}

function hasVideoTrack() {
  return localStream.getVideoTracks().length > 0;
}

/** @param {HTMLVideoElement} video */
function playVideo(video) {
  const result = video.play();
  if (result && typeof result.catch === "function") {
    result.catch((/** @type {unknown} */ error) => {
      if (error instanceof DOMException && error.name === "NotAllowedError") offerSoundButton();
    });
  }
}

/**
 * @param {HTMLVideoElement} video
 * @param {MediaStream | null} stream
 */
function setVideoStream(video, stream) {
  if (video.srcObject === stream) return;
  video.srcObject = stream;
  if (stream) playVideo(video);
}

// ------------------------------------------------------------------ notices

/** @type {Map<string, {element: HTMLElement, timer: ReturnType<typeof setTimeout> | null}>} */
const notices = new Map();

/**
 * Show (or replace) the notice with this key in the status area.
 * @param {string} key
 * @param {string} text
 * @param {{kind?: "info" | "warn" | "error", timeoutMs?: number,
 *   action?: {label: string, onClick: () => void}, dismissible?: boolean}} [options]
 */
function showNotice(key, text, options = {}) {
  clearNotice(key);
  const element = el("div", `notice notice--${options.kind ?? "info"}`);
  element.dataset.notice = key;
  element.append(el("span", "notice__text", text));
  if (options.action) {
    const { label, onClick } = options.action;
    const button = /** @type {HTMLButtonElement} */ (el("button", "button button--small", label));
    button.type = "button";
    button.addEventListener("click", onClick);
    element.append(button);
  }
  if (options.dismissible) {
    const button = /** @type {HTMLButtonElement} */ (el("button", "button button--small button--quiet", "Dismiss"));
    button.type = "button";
    button.addEventListener("click", () => clearNotice(key));
    element.append(button);
  }
  ui.notices.append(element);
  const timer = options.timeoutMs ? setTimeout(() => clearNotice(key), options.timeoutMs) : null;
  notices.set(key, { element, timer });
}

/** @param {string} key */
function clearNotice(key) {
  const notice = notices.get(key);
  if (!notice) return;
  if (notice.timer !== null) clearTimeout(notice.timer);
  notice.element.remove();
  notices.delete(key);
}

/** @param {string} [except] */
function clearNotices(except) {
  for (const key of [...notices.keys()]) if (key !== except) clearNotice(key);
}

function offerSoundButton() {
  if (notices.has("sound")) return;
  showNotice("sound", "Your browser paused the call's sound.", {
    kind: "warn",
    action: {
      label: "Turn on sound",
      onClick: () => {
        clearNotice("sound");
        ui.grid.querySelectorAll("video").forEach(playVideo);
      },
    },
  });
}

// ------------------------------------------------------------------ session id

function loadSessionId() {
  let stored = null;
  try {
    stored = sessionStorage.getItem(sessionKey);
  } catch {
    // storage unavailable: a fresh id per page
  }
  if (isValidSessionId(stored)) return stored;
  return newSessionId();
}

function newSessionId() {
  const id = randomSessionId(24);
  try {
    sessionStorage.setItem(sessionKey, id);
  } catch {
    // ignore
  }
  return id;
}

let sessionId = loadSessionId();

// A duplicated tab copies sessionStorage, so it would take over the other tab's participant.
// Ask the other tabs of this browser whether this session is in use before joining.
const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel("meetnow.sessions") : null;
let sessionTaken = false;
if (channel) {
  channel.onmessage = (event) => {
    const data = event.data;
    if (!data || typeof data !== "object" || data.session !== sessionId) return;
    if (data.type === "probe" && inCall) channel.postMessage({ type: "taken", session: sessionId });
    if (data.type === "taken") sessionTaken = true;
  };
}

async function ensureOwnSession() {
  if (!channel) return;
  sessionTaken = false;
  channel.postMessage({ type: "probe", session: sessionId });
  await new Promise((resolve) => setTimeout(resolve, 150));
  if (sessionTaken) sessionId = newSessionId();
}

// Asked once, as the page loads (a duplicated tab is the case it catches), so the Join click
// never waits for the answer.
const sessionChecked = ensureOwnSession();

// ------------------------------------------------------------------ local media

/**
 * Microphone and camera, degrading to whatever is available (possibly nothing).
 * @returns {Promise<MediaResult>}
 */
async function acquireMedia() {
  const devices = navigator.mediaDevices;
  if (!devices || typeof devices.getUserMedia !== "function") {
    return {
      stream: new MediaStream(),
      notice: window.isSecureContext
        ? "This browser gives no access to a microphone or camera: you can still join, see and hear others."
        : "Microphone and camera need a secure (https) connection: you can still join, see and hear others.",
    };
  }
  /** @type {unknown[]} */
  const errors = [];
  /** @param {MediaStreamConstraints} constraints */
  const attempt = async (constraints) => {
    try {
      return await devices.getUserMedia(constraints);
    } catch (error) {
      errors.push(error);
      return null;
    }
  };
  const both = await attempt({ audio: true, video: { width: 640, height: 480 } });
  if (both) return { stream: both, notice: null };
  const audio = await attempt({ audio: true });
  if (audio) return { stream: audio, notice: "Camera not available: others will hear you but not see you." };
  const video = await attempt({ video: { width: 640, height: 480 } });
  if (video) return { stream: video, notice: "Microphone not available: others will see you but not hear you." };
  const blocked = errors.some(
    (error) => error instanceof DOMException && (error.name === "NotAllowedError" || error.name === "SecurityError"),
  );
  return {
    stream: new MediaStream(),
    notice: blocked
      ? "Microphone and camera blocked: you can still join, see and hear others."
      : "No microphone or camera found: you can still join, see and hear others.",
  };
}

function startMedia() {
  mediaSettled = false;
  const promise = acquireMedia().then((result) => {
    if (mediaPromise !== promise) {
      // Superseded (left the page state meanwhile): release the devices.
      for (const track of result.stream.getTracks()) track.stop();
      return result;
    }
    mediaSettled = true;
    localStream = result.stream;
    applyWantedMedia();
    if (result.notice) showNotice("media", result.notice, { kind: "warn", dismissible: true });
    else clearNotice("media");
    setVideoStream(ui.preview, hasVideoTrack() ? localStream : null);
    if (localTile) setVideoStream(localTile.video, localStream);
    renderPrejoinToggles();
    return result;
  });
  mediaPromise = promise;
  return promise;
}

function stopMedia() {
  mediaPromise = null;
  for (const track of localStream.getTracks()) track.stop();
  localStream = new MediaStream();
  ui.preview.srcObject = null;
}

function applyWantedMedia() {
  for (const track of localStream.getAudioTracks()) track.enabled = wantAudio;
  for (const track of localStream.getVideoTracks()) track.enabled = wantVideo;
}

/**
 * @param {HTMLButtonElement} button
 * @param {{available: boolean, on: boolean, onText: string, offText: string, missingText: string}} state
 *   onText is shown while the device is on (the action turns it off)
 */
function renderToggle(button, state) {
  button.disabled = !state.available;
  button.setAttribute("aria-pressed", String(!(state.available && state.on)));
  button.textContent = !state.available ? state.missingText : state.on ? state.onText : state.offText;
}

function renderPrejoinToggles() {
  renderToggle(ui.prejoinMic, {
    available: hasAudioTrack(),
    on: wantAudio,
    onText: "Turn off microphone",
    offText: "Turn on microphone",
    missingText: mediaSettled ? "No microphone" : "Microphone…",
  });
  renderToggle(ui.prejoinCam, {
    available: hasVideoTrack(),
    on: wantVideo,
    onText: "Turn off camera",
    offText: "Turn on camera",
    missingText: mediaSettled ? "No camera" : "Camera…",
  });
  ui.previewOff.hidden = hasVideoTrack() && wantVideo;
  ui.previewOff.textContent = !mediaSettled ? "Starting camera…" : hasVideoTrack() ? "Camera is off" : "No camera";
}

function renderControls() {
  renderToggle(ui.micButton, {
    available: hasAudioTrack(),
    on: wantAudio,
    onText: "Mute",
    offText: "Unmute",
    missingText: "Unmute",
  });
  ui.micButton.title = hasAudioTrack() ? "" : "No microphone available";
  if (mutedByHost) {
    // The relay does not forward our audio: the button can do nothing until a host allows it.
    ui.micButton.disabled = true;
    ui.micButton.setAttribute("aria-pressed", "true");
    ui.micButton.textContent = "Muted by host";
    ui.micButton.title = "A host muted you: the others cannot hear you until a host allows your audio.";
  }
  renderToggle(ui.camButton, {
    available: hasVideoTrack(),
    on: wantVideo,
    onText: "Camera off",
    offText: "Camera on",
    missingText: "Camera on",
  });
  ui.camButton.title = hasVideoTrack() ? "" : "No camera available";
  if (localTile) {
    setTileMedia(localTile, {
      audio: hasAudioTrack() && wantAudio && !mutedByHost,
      video: hasVideoTrack() && wantVideo,
    });
    setTileRoles(localTile, amHost, mutedByHost);
  }
}

// ------------------------------------------------------------------ tiles

/**
 * @param {string} name
 * @param {boolean} local
 * @param {string} [participantId]
 * @returns {Tile}
 */
function createTile(name, local, participantId = "") {
  const root = el("div", "tile");
  const video = document.createElement("video");
  video.className = "tile__video";
  video.autoplay = true;
  video.playsInline = true;
  video.setAttribute("playsinline", "");
  if (local) {
    root.setAttribute("data-local", "");
    video.muted = true;
    video.setAttribute("muted", "");
    video.classList.add("mirror");
  }
  const avatar = el("div", "tile__avatar");
  avatar.setAttribute("aria-hidden", "true");
  const footer = el("div", "tile__footer");
  const micOff = el("span", "tile__mic-off");
  micOff.setAttribute("role", "img");
  micOff.setAttribute("aria-label", "Microphone muted");
  micOff.title = "Microphone muted";
  const nameEl = el("span", "tile__name");
  nameEl.id = `tile-name-${++nextUid}`;
  const hostBadge = el("span", "tile__badge tile__badge--host", "Host");
  hostBadge.hidden = true;
  const mutedBadge = el("span", "tile__badge tile__badge--muted", "Muted by host");
  mutedBadge.hidden = true;
  footer.append(micOff, nameEl, hostBadge, mutedBadge);
  root.append(video, avatar, footer);
  /** @type {Tile} */
  const tile = {
    id: participantId,
    root,
    video,
    nameEl,
    avatar,
    micOff,
    hostBadge,
    mutedBadge,
    menu: null,
    name: "",
    host: false,
    mutedByHost: false,
  };
  if (!local) {
    tile.menu = createTileMenu(tile);
    root.append(tile.menu.wrap);
  }
  setTileName(tile, name, local);
  return tile;
}

/**
 * Host actions on a remote tile: a small "•••" disclosure with Mute / Make host / Remove.
 * @param {Tile} tile
 * @returns {TileMenu}
 */
function createTileMenu(tile) {
  const wrap = el("div", "tile__menu");
  wrap.hidden = !amHost;
  const toggle = makeButton("•••", "button button--small tile__menu-toggle");
  toggle.setAttribute("aria-label", "Host actions");
  toggle.setAttribute("aria-describedby", tile.nameEl.id);
  toggle.setAttribute("aria-expanded", "false");
  const panel = el("div", "tile__menu-panel");
  panel.id = `tile-menu-${++nextUid}`;
  panel.hidden = true;
  toggle.setAttribute("aria-controls", panel.id);
  const mute = makeButton("Mute");
  const makeHost = makeButton("Make host");
  const remove = makeButton("Remove", "button button--small button--danger");
  for (const button of [mute, makeHost, remove]) button.setAttribute("aria-describedby", tile.nameEl.id);
  panel.append(mute, makeHost, remove);
  wrap.append(toggle, panel);
  /** @type {TileMenu} */
  const menu = { wrap, toggle, panel, mute, makeHost, remove };

  toggle.addEventListener("click", () => setMenuOpen(menu, toggle.getAttribute("aria-expanded") !== "true"));
  mute.addEventListener("click", () => {
    setMenuOpen(menu, false);
    hostCommand((current) => current.mute(tile.id, !tile.mutedByHost));
  });
  makeHost.addEventListener("click", () => {
    setMenuOpen(menu, false);
    hostCommand((current) => current.makeHost(tile.id));
  });
  remove.addEventListener("click", () => {
    setMenuOpen(menu, false);
    hostCommand((current) => current.remove(tile.id));
  });
  return menu;
}

/**
 * @param {TileMenu} menu
 * @param {boolean} open
 */
function setMenuOpen(menu, open) {
  if (open) closeMenus();
  menu.panel.hidden = !open;
  menu.toggle.setAttribute("aria-expanded", String(open));
  menu.wrap.classList.toggle("tile__menu--open", open);
}

/** @param {Node | null} [except] leave open the menu that contains this node */
function closeMenus(except = null) {
  for (const tile of tiles.values()) {
    const menu = tile.menu;
    if (menu && !menu.panel.hidden && !(except && menu.wrap.contains(except))) setMenuOpen(menu, false);
  }
}

/**
 * Show the host badge and the "muted by host" marks of a tile.
 * @param {Tile} tile
 * @param {boolean} host
 * @param {boolean} muted
 */
function setTileRoles(tile, host, muted) {
  tile.host = host;
  tile.mutedByHost = muted;
  tile.hostBadge.hidden = !host;
  tile.mutedBadge.hidden = !muted;
  tile.root.classList.toggle("tile--host", host);
  tile.root.classList.toggle("tile--muted-by-host", muted);
  if (tile.menu) {
    tile.menu.mute.textContent = muted ? "Allow audio" : "Mute";
    tile.menu.makeHost.hidden = host;
  }
}

/**
 * @param {Tile} tile
 * @param {string} name
 * @param {boolean} local
 */
function setTileName(tile, name, local) {
  tile.name = name;
  tile.nameEl.textContent = local ? `${name} (you)` : name;
  tile.avatar.textContent = initials(name);
  tile.avatar.style.backgroundColor = `hsl(${hue(name)} 35% 32%)`;
}

/**
 * @param {Tile} tile
 * @param {MediaState} media
 */
function setTileMedia(tile, media) {
  tile.root.classList.toggle("tile--audio-off", !media.audio);
  tile.root.classList.toggle("tile--video-off", !media.video);
  tile.micOff.hidden = media.audio;
}

/** @param {ParticipantInfo} participant */
function upsertParticipant(participant) {
  let tile = tiles.get(participant.id);
  if (!tile) {
    tile = createTile(participant.name, false, participant.id);
    tile.root.setAttribute("data-participant", participant.id);
    tiles.set(participant.id, tile);
    ui.grid.append(tile.root);
    setVideoStream(tile.video, remoteStreams.get(participant.id) ?? null);
    updateLayout();
  } else if (tile.name !== participant.name) {
    setTileName(tile, participant.name, false);
  }
  setTileMedia(tile, participant.media ?? { audio: true, video: true });
  setTileRoles(tile, participant.host === true, participant.muted_by_host === true);
}

/** @param {string} participantId */
function removeParticipant(participantId) {
  const tile = tiles.get(participantId);
  if (tile) {
    tile.video.srcObject = null;
    tile.root.remove();
    tiles.delete(participantId);
  }
  remoteStreams.delete(participantId);
  updateLayout();
}

function clearGrid() {
  for (const tile of tiles.values()) tile.video.srcObject = null;
  tiles.clear();
  remoteStreams.clear();
  if (localTile) localTile.video.srcObject = null;
  localTile = null;
  ui.grid.replaceChildren();
  updateLayout();
}

function updateLayout() {
  const count = ui.grid.children.length;
  const layout = count <= 1 ? "1" : count === 2 ? "2" : count <= 4 ? "4" : count <= 9 ? "9" : "many";
  ui.grid.dataset.count = String(count);
  ui.grid.dataset.layout = layout;
}

// ------------------------------------------------------------------ host controls and lobby

/**
 * Send a host command through the current call; say so when there is no call to send it on.
 * @param {(current: MeetnowCall) => boolean} send
 * @returns {boolean}
 */
function hostCommand(send) {
  if (call && send(call)) return true;
  showNotice("host-command", "Not connected to the meeting: try again in a moment.", { kind: "warn", timeoutMs: 5000 });
  return false;
}

/** @param {boolean} host */
function setHost(host) {
  amHost = host;
  ui.hostBar.hidden = !host;
  if (!host) {
    hideEndConfirm();
    clearKnocks();
  }
  for (const tile of tiles.values()) {
    if (!tile.menu) continue;
    tile.menu.wrap.hidden = !host;
    if (!host) setMenuOpen(tile.menu, false);
  }
  if (localTile) setTileRoles(localTile, amHost, mutedByHost);
  renderLobby();
  renderRoomState();
}

/** @param {RoomInfo | null | undefined} room */
function setRoomState(room) {
  roomState = { locked: room?.locked === true, lobby: room?.lobby === true };
  renderRoomState();
}

function renderRoomState() {
  ui.lockedBadge.hidden = !roomState.locked;
  ui.lockButton.textContent = roomState.locked ? "Unlock meeting" : "Lock meeting";
  ui.lockButton.title = roomState.locked ? "Let new people join again" : "Nobody new can join, not even through the lobby";
  ui.lobbyButton.textContent = roomState.lobby ? "Lobby on" : "Lobby off";
  ui.lobbyButton.setAttribute("aria-pressed", String(roomState.lobby));
  ui.lobbyButton.title = roomState.lobby
    ? "Newcomers wait until a host lets them in. Click to let them straight in."
    : "Newcomers come straight in. Click to make them wait until a host lets them in.";
}

function showEndConfirm() {
  ui.endButton.hidden = true;
  ui.endConfirm.hidden = false;
  ui.endConfirmButton.disabled = false;
  ui.endCancelButton.focus();
}

function hideEndConfirm() {
  const hadFocus = ui.endConfirm.contains(document.activeElement);
  ui.endConfirm.hidden = true;
  ui.endButton.hidden = false;
  if (hadFocus && amHost) ui.endButton.focus();
}

/** @param {KnockInfo} info */
function addKnock(info) {
  if (knocks.has(info.id)) return;
  const name = typeof info.name === "string" && info.name ? info.name : "Guest";
  const root = el("li", "knock");
  root.setAttribute("data-knock", info.id);
  const nameEl = el("span", "knock__name", name);
  nameEl.id = `knock-name-${++nextUid}`;
  const admit = makeButton("Admit", "button button--small button--primary");
  const deny = makeButton("Deny");
  for (const button of [admit, deny]) button.setAttribute("aria-describedby", nameEl.id);
  const actions = el("span", "knock__actions");
  actions.append(admit, deny);
  root.append(nameEl, actions);
  /** @type {Knock} */
  const knock = { root, buttons: [admit, deny], timer: null };
  admit.addEventListener("click", () => answerKnock(info.id, true));
  deny.addEventListener("click", () => answerKnock(info.id, false));
  knocks.set(info.id, knock);
  ui.lobbyList.append(root);
  renderLobby();
}

/**
 * @param {string} participantId
 * @param {boolean} admit
 */
function answerKnock(participantId, admit) {
  const knock = knocks.get(participantId);
  if (!knock) return;
  if (!hostCommand((current) => (admit ? current.admit(participantId) : current.deny(participantId)))) return;
  // Until knock_resolved removes it; a refusal (the room is full...) lets the host try again.
  for (const button of knock.buttons) button.disabled = true;
  if (knock.timer !== null) clearTimeout(knock.timer);
  knock.timer = setTimeout(() => {
    knock.timer = null;
    for (const button of knock.buttons) button.disabled = false;
  }, 4000);
}

/** @param {string} participantId */
function removeKnock(participantId) {
  const knock = knocks.get(participantId);
  if (!knock) return;
  if (knock.timer !== null) clearTimeout(knock.timer);
  knock.root.remove();
  knocks.delete(participantId);
  renderLobby();
}

function clearKnocks() {
  for (const participantId of [...knocks.keys()]) removeKnock(participantId);
}

function renderLobby() {
  ui.lobbyPanel.hidden = !(amHost && knocks.size > 0);
  ui.lobbyCount.textContent = knocks.size > 0 ? `(${knocks.size} waiting)` : "";
}

// ------------------------------------------------------------------ call

/** @param {string} code @param {string} message @param {string | null} reason */
function endedText(code, message, reason) {
  switch (code) {
    case "locked":
      return "The host has locked this meeting.";
    case "removed":
      return "The host removed you from this meeting.";
    case "denied":
      return "The host did not let you in.";
    case "room_ended":
      // The server says which: the meeting ended, or its link's --for time is up (the meeting
      // may go on for those already in it). Its words, shown as text.
      return message || "This meeting has ended.";
    case "room_not_found":
      return "This meeting link is not valid or has expired.";
    case "room_full":
      return "This meeting is full.";
    case "replaced":
      return "You joined this meeting from another tab or window.";
    case "webrtc_unsupported":
      return "This browser cannot make video calls.";
    case "room_closed":
      if (reason === "expired") return "This meeting has expired.";
      if (reason === "server_shutdown") return "The meeting server shut down.";
      if (reason === "ended") {
        return endedByMe ? "You ended the meeting for everyone." : "The host ended the meeting for everyone.";
      }
      return "This meeting has ended.";
    default:
      return message || "The connection to the meeting was lost.";
  }
}

/** @param {string} code */
function endedTitle(code) {
  switch (code) {
    case "room_closed":
      return "The meeting is over";
    case "room_ended":
      return "You can't join this meeting";
    case "removed":
      return "You were removed";
    case "denied":
      return "You were not let in";
    case "locked":
      return "This meeting is locked";
    default:
      return "You are not in the meeting";
  }
}

/** Worth a "Try again" button (a locked meeting may be unlocked; removed/denied/ended never help). */
const RETRYABLE = new Set(["negotiation_failed", "server_error", "replaced", "room_full", "invalid_message", "locked", "no_ports"]);
/** The room is gone for good: forget its host token. */
const ROOM_GONE = new Set(["room_closed", "room_ended", "room_not_found"]);

async function join() {
  if (joining || inCall) return;
  joining = true;
  ui.joinButton.disabled = true;
  try {
    displayName = ui.nameInput.value.trim().slice(0, MAX_NAME_LENGTH) || "Guest";
    try {
      localStorage.setItem(NAME_KEY, displayName);
    } catch {
      // private mode: not remembered
    }
    if (!mediaPromise) startMedia();
    if (!mediaSettled) showNotice("waiting", "Waiting for your microphone and camera…");
    await mediaPromise;
    clearNotice("waiting");
    await sessionChecked;
    startCall();
  } finally {
    joining = false;
    ui.joinButton.disabled = false;
  }
}

function startCall() {
  // The pre-join screen is never shown again (Rejoin joins directly): drop it, so the page holds
  // exactly one <video> per tile.
  if (ui.prejoin.isConnected) {
    ui.preview.srcObject = null;
    ui.prejoin.remove();
  }
  clearNotices("media");
  applyWantedMedia();
  clearGrid();
  endedByMe = false;
  mutedByHost = false;
  localTile = createTile(displayName, true);
  ui.grid.append(localTile.root);
  updateLayout();
  setVideoStream(localTile.video, localStream);
  renderControls();
  showScreen(ui.call);
  inCall = true;

  const current = new MeetnowCall({
    roomId,
    name: displayName,
    session: sessionId,
    stream: localStream,
    hostToken,
  });
  call = current;
  let everJoined = false;
  /**
   * @template T
   * @param {string} type
   * @param {(detail: T) => void} handler
   */
  const on = (type, handler) => {
    current.addEventListener(type, (event) => {
      if (call !== current) return;
      handler(/** @type {CustomEvent<T>} */ (event).detail);
    });
  };

  on("joined", /** @param {JoinedDetail} detail */ (detail) => {
    clearNotice("connecting");
    if (!everJoined) clearNotice("connection");
    everJoined = true;
    clearNotice("knock-wait");
    if (localTile) {
      localTile.id = detail.participantId;
      localTile.root.setAttribute("data-participant", detail.participantId);
    }
    if (!ui.waiting.hidden) ui.waitingPreview.srcObject = null;
    showScreen(ui.call);
    // A new participant on the server: its host mute (if any) does not carry over.
    mutedByHost = false;
    setRoomState(detail.room);
    const present = new Set(detail.participants.map((participant) => participant.id));
    for (const participantId of [...tiles.keys()]) if (!present.has(participantId)) removeParticipant(participantId);
    for (const participant of detail.participants) upsertParticipant(participant);
    clearKnocks();
    setHost(detail.host);
    if (detail.host) for (const knock of detail.waiting) addKnock(knock);
    renderControls();
    showTopic(detail.room?.topic);
  });
  on("waiting", /** @param {WaitingDetail} detail */ (detail) => {
    clearNotice("connecting");
    clearNotice("connection");
    setHost(false);
    setRoomState(detail.room);
    const topic = detail.room?.topic ?? "";
    showTopic(topic);
    ui.waitingTopic.textContent = topic ? `Meeting: ${topic}` : "";
    ui.waitingTopic.hidden = !topic;
    setVideoStream(ui.waitingPreview, hasVideoTrack() ? localStream : null);
    showScreen(ui.waiting);
  });
  on("participant-joined", /** @param {ParticipantDetail} detail */ (detail) => upsertParticipant(detail.participant));
  on("participant-updated", /** @param {ParticipantDetail} detail */ (detail) => upsertParticipant(detail.participant));
  on("self-updated", /** @param {ParticipantDetail} detail */ (detail) => {
    const host = detail.participant.host === true;
    const muted = detail.participant.muted_by_host === true;
    if (host && !amHost) showNotice("host", "You are now a host of this meeting.", { timeoutMs: 5000 });
    if (muted !== mutedByHost) {
      showNotice(
        "muted-by-host",
        muted ? "A host muted you: the others cannot hear you." : "A host allowed your audio again.",
        { kind: muted ? "warn" : "info", timeoutMs: 6000 },
      );
    }
    mutedByHost = muted;
    if (host !== amHost) setHost(host);
    renderControls();
  });
  on("knock", /** @param {KnockDetail} detail */ (detail) => {
    if (!amHost) return;
    addKnock(detail.participant);
    const name = detail.participant.name || "Guest";
    showNotice("knock", `${name} is waiting in the lobby.`, { timeoutMs: 4000 });
  });
  on("knock-resolved", /** @param {KnockResolvedDetail} detail */ (detail) => removeKnock(detail.participantId));
  on("room-updated", /** @param {RoomUpdatedDetail} detail */ (detail) => {
    const wasLocked = roomState.locked;
    setRoomState(detail.room);
    if (roomState.locked !== wasLocked) {
      showNotice("room", roomState.locked ? "The meeting is locked: nobody new can join." : "The meeting is unlocked.", {
        timeoutMs: 4000,
      });
    }
  });
  on("participant-left", /** @param {ParticipantLeftDetail} detail */ (detail) => removeParticipant(detail.participantId));
  on("remote-stream", /** @param {RemoteStreamDetail} detail */ (detail) => {
    if (detail.stream) remoteStreams.set(detail.participantId, detail.stream);
    else remoteStreams.delete(detail.participantId);
    const tile = tiles.get(detail.participantId);
    if (tile) setVideoStream(tile.video, detail.stream);
  });
  on("reconnecting", /** @param {ReconnectingDetail} detail */ (detail) => {
    clearNotice("connecting");
    const seconds = Math.max(1, Math.round(detail.delayMs / 1000));
    const what = everJoined ? "Connection lost. Reconnecting…" : "Cannot reach the meeting server. Retrying…";
    showNotice("connection", detail.attempt > 1 ? `${what} (next try in ${seconds} s)` : what, { kind: "warn" });
  });
  on("reconnected", () => showNotice("connection", "Reconnected.", { timeoutMs: 3000 }));
  on("server-error", /** @param {ServerErrorDetail} detail */ (detail) => {
    if (detail.code === "rate_limited") {
      showNotice("rate", "Slow down: the server is ignoring some of your clicks for a moment.", {
        kind: "warn",
        timeoutMs: 3000,
      });
    } else if (detail.code === "not_host") {
      showNotice("error", "Only a host can do that.", { kind: "error", timeoutMs: 5000 });
    } else {
      showNotice("error", detail.message, { kind: "error", timeoutMs: 8000 });
    }
  });
  on("ended", /** @param {EndedDetail} detail */ (detail) => {
    call = null;
    inCall = false;
    ui.waitingPreview.srcObject = null;
    stopMedia();
    clearGrid();
    setHost(false);
    setRoomState(null);
    clearNotices();
    if (ROOM_GONE.has(detail.code)) forgetHostToken();
    ui.endedTitle.textContent = endedTitle(detail.code);
    ui.endedText.textContent = endedText(detail.code, detail.message, detail.reason);
    ui.retryButton.hidden = !RETRYABLE.has(detail.code);
    showScreen(ui.ended);
  });

  showNotice("connecting", "Connecting…");
  current.start();
}

function leave() {
  const current = call;
  call = null;
  inCall = false;
  if (current) current.leave();
  ui.waitingPreview.srcObject = null;
  stopMedia();
  clearGrid();
  setHost(false);
  setRoomState(null);
  clearNotices();
  showTopic("");
  showScreen(ui.left);
}

/** Rejoin directly (after leaving or a retryable error), same name, same session. */
async function rejoin() {
  clearNotices();
  startMedia();
  await join();
}

async function copyLink() {
  // The plain room link: never a fragment (the host token lives in storage, not in the URL).
  const link = location.origin + location.pathname;
  let copied = false;
  if (navigator.clipboard && typeof navigator.clipboard.writeText === "function") {
    try {
      await navigator.clipboard.writeText(link);
      copied = true;
    } catch {
      // denied or unavailable: fall back below
    }
  }
  if (!copied) {
    ui.copyFallback.value = link;
    ui.copyFallback.hidden = false;
    ui.copyFallback.focus();
    ui.copyFallback.select();
    try {
      copied = document.execCommand("copy");
    } catch {
      copied = false;
    }
    if (copied) ui.copyFallback.hidden = true;
  }
  if (copied) showNotice("copy", "Link copied", { timeoutMs: 3000 });
  else showNotice("copy", "Copy the selected link to share this meeting.", { timeoutMs: 8000 });
}

// ------------------------------------------------------------------ wiring

ui.prejoinMic.addEventListener("click", () => {
  wantAudio = !wantAudio;
  applyWantedMedia();
  renderPrejoinToggles();
});
ui.prejoinCam.addEventListener("click", () => {
  wantVideo = !wantVideo;
  applyWantedMedia();
  renderPrejoinToggles();
});
ui.micButton.addEventListener("click", () => {
  if (mutedByHost) return;
  wantAudio = !wantAudio;
  if (call) call.setAudioEnabled(wantAudio);
  else applyWantedMedia();
  renderControls();
});
ui.camButton.addEventListener("click", () => {
  wantVideo = !wantVideo;
  if (call) call.setVideoEnabled(wantVideo);
  else applyWantedMedia();
  renderControls();
});
ui.copyButton.addEventListener("click", () => void copyLink());
ui.copyFallback.addEventListener("blur", () => {
  ui.copyFallback.hidden = true;
});
ui.leaveButton.addEventListener("click", leave);
ui.waitingLeaveButton.addEventListener("click", leave);
ui.lockButton.addEventListener("click", () => {
  hostCommand((current) => current.setLocked(!roomState.locked));
});
ui.lobbyButton.addEventListener("click", () => {
  hostCommand((current) => current.setLobby(!roomState.lobby));
});
ui.endButton.addEventListener("click", showEndConfirm);
ui.endCancelButton.addEventListener("click", hideEndConfirm);
ui.endConfirmButton.addEventListener("click", () => {
  if (hostCommand((current) => current.endMeeting())) {
    endedByMe = true;
    ui.endConfirmButton.disabled = true;
  }
});
document.addEventListener("click", (event) => {
  closeMenus(event.target instanceof Node ? event.target : null);
});
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  if (!ui.endConfirm.hidden) hideEndConfirm();
  for (const tile of tiles.values()) {
    const menu = tile.menu;
    if (menu && !menu.panel.hidden) {
      setMenuOpen(menu, false);
      menu.toggle.focus();
    }
  }
});
ui.rejoinButton.addEventListener("click", () => void rejoin());
ui.retryButton.addEventListener("click", () => void rejoin());
ui.joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  void join();
});

try {
  ui.nameInput.value = localStorage.getItem(NAME_KEY) ?? "";
} catch {
  // storage unavailable
}
ui.hostHint.hidden = hostToken === null;
showScreen(ui.prejoin);
renderPrejoinToggles();
renderRoomState();
startMedia();
