// meetnow room page: pre-join screen, call grid, controls. UI only; the protocol lives in
// protocol.js. Participant names are untrusted: they only ever go through textContent.

import { MeetnowCall, isValidSessionId, randomSessionId } from "./protocol.js";

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
 *
 * @typedef {object} Tile
 * @property {HTMLElement} root
 * @property {HTMLVideoElement} video
 * @property {HTMLElement} nameEl
 * @property {HTMLElement} avatar
 * @property {HTMLElement} micOff
 * @property {string} name
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
  notices: byId("notices", HTMLElement),
  prejoin: byId("prejoin", HTMLElement),
  preview: byId("preview", HTMLVideoElement),
  previewOff: byId("preview-off", HTMLElement),
  prejoinMic: byId("prejoin-mic", HTMLButtonElement),
  prejoinCam: byId("prejoin-cam", HTMLButtonElement),
  joinForm: byId("join-form", HTMLFormElement),
  nameInput: byId("name-input", HTMLInputElement),
  joinButton: byId("join-button", HTMLButtonElement),
  call: byId("call", HTMLElement),
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
  retryButton: byId("retry-button", HTMLButtonElement),
};

const roomId = (() => {
  const segment = location.pathname.split("/").filter(Boolean).pop() ?? "";
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
})();
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

// ------------------------------------------------------------------ small helpers

/** @param {HTMLElement} screen */
function showScreen(screen) {
  for (const element of [ui.prejoin, ui.call, ui.left, ui.ended]) element.hidden = element !== screen;
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
  renderToggle(ui.camButton, {
    available: hasVideoTrack(),
    on: wantVideo,
    onText: "Camera off",
    offText: "Camera on",
    missingText: "Camera on",
  });
  ui.camButton.title = hasVideoTrack() ? "" : "No camera available";
  if (localTile) {
    setTileMedia(localTile, { audio: hasAudioTrack() && wantAudio, video: hasVideoTrack() && wantVideo });
  }
}

// ------------------------------------------------------------------ tiles

/**
 * @param {string} name
 * @param {boolean} local
 * @returns {Tile}
 */
function createTile(name, local) {
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
  footer.append(micOff, nameEl);
  root.append(video, avatar, footer);
  const tile = { root, video, nameEl, avatar, micOff, name: "" };
  setTileName(tile, name, local);
  return tile;
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
    tile = createTile(participant.name, false);
    tile.root.setAttribute("data-participant", participant.id);
    tiles.set(participant.id, tile);
    ui.grid.append(tile.root);
    setVideoStream(tile.video, remoteStreams.get(participant.id) ?? null);
    updateLayout();
  } else if (tile.name !== participant.name) {
    setTileName(tile, participant.name, false);
  }
  setTileMedia(tile, participant.media ?? { audio: true, video: true });
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

// ------------------------------------------------------------------ call

/** @param {string} code @param {string} message @param {string | null} reason */
function endedText(code, message, reason) {
  switch (code) {
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
      return "This meeting has ended.";
    default:
      return message || "The connection to the meeting was lost.";
  }
}

const RETRYABLE = new Set(["negotiation_failed", "server_error", "replaced", "room_full", "invalid_message"]);

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
    await ensureOwnSession();
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
  localTile = createTile(displayName, true);
  ui.grid.append(localTile.root);
  updateLayout();
  setVideoStream(localTile.video, localStream);
  renderControls();
  showScreen(ui.call);
  inCall = true;

  const current = new MeetnowCall({ roomId, name: displayName, session: sessionId, stream: localStream });
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
    if (localTile) localTile.root.setAttribute("data-participant", detail.participantId);
    const present = new Set(detail.participants.map((participant) => participant.id));
    for (const participantId of [...tiles.keys()]) if (!present.has(participantId)) removeParticipant(participantId);
    for (const participant of detail.participants) upsertParticipant(participant);
    const topic = detail.room && detail.room.topic ? detail.room.topic : "";
    ui.topic.textContent = topic;
    document.title = topic ? `${topic} · meetnow` : "meetnow";
  });
  on("participant-joined", /** @param {ParticipantDetail} detail */ (detail) => upsertParticipant(detail.participant));
  on("participant-updated", /** @param {ParticipantDetail} detail */ (detail) => upsertParticipant(detail.participant));
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
    showNotice("error", detail.message, { kind: "error", timeoutMs: 8000 });
  });
  on("ended", /** @param {EndedDetail} detail */ (detail) => {
    call = null;
    inCall = false;
    stopMedia();
    clearGrid();
    clearNotices();
    showNotice("fatal", endedText(detail.code, detail.message, detail.reason), { kind: "error" });
    ui.endedTitle.textContent = detail.code === "room_closed" ? "The meeting is over" : "You are not in the meeting";
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
  stopMedia();
  clearGrid();
  clearNotices();
  ui.topic.textContent = "";
  showScreen(ui.left);
}

/** Rejoin directly (after leaving or a retryable error), same name, same session. */
async function rejoin() {
  clearNotices();
  startMedia();
  await join();
}

async function copyLink() {
  const link = location.href;
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
showScreen(ui.prejoin);
renderPrejoinToggles();
startMedia();
