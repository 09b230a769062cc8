// Sharing our screen: the "Share screen" / "Stop sharing" button, getDisplayMedia, the local
// preview tile, and stopping from the button, from the browser's own "Stop sharing" (the track
// ends) or when the server refuses (the room's cap on screens).

import { t } from "./i18n.js";
import { clearNotice, showNotice } from "./notices.js";
import { setOwnScreen } from "./screen-tiles.js";
import { state } from "./state.js";

const NOT_ALLOWED = t("page.screen.not_allowed");
const UNAVAILABLE = t("page.screen.unavailable");
const UNSUPPORTED = t("page.screen.unsupported");

/** @returns {HTMLButtonElement} */
function screenButton() {
  const button = document.getElementById("screen-button");
  if (!(button instanceof HTMLButtonElement)) throw new Error("meetnow: #screen-button is missing from the page");
  return button;
}

function canShareScreen() {
  const devices = navigator.mediaDevices;
  return Boolean(devices && typeof devices.getDisplayMedia === "function");
}

export function renderScreenButton() {
  const button = screenButton();
  button.hidden = !canShareScreen();
  button.textContent = state.screenStream ? t("page.call.stop_sharing") : t("page.call.share_screen");
  button.disabled = state.screenPicking;
}

/**
 * What to tell someone whose share did not start.
 * @param {unknown} error from getDisplayMedia
 */
function refusalText(error) {
  const name = error instanceof DOMException ? error.name : "";
  if (name === "NotAllowedError" || name === "SecurityError") return NOT_ALLOWED;
  return UNAVAILABLE;
}

/**
 * The screen, with its tab's audio where the browser offers it. A browser that knows no audio
 * for screens (TypeError on the constraint) is asked for the video alone.
 * @returns {Promise<MediaStream>}
 */
async function pickScreen() {
  try {
    return await navigator.mediaDevices.getDisplayMedia({ video: true, audio: true });
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    return navigator.mediaDevices.getDisplayMedia({ video: true });
  }
}

/** The button: start sharing, or stop. */
export async function toggleScreenShare() {
  if (state.screenStream) {
    stopScreenShare();
    return;
  }
  const call = state.call;
  if (state.screenPicking || !call) return;
  if (!canShareScreen()) {
    showNotice("screen", UNSUPPORTED, { kind: "warn", dismissible: true });
    return;
  }
  state.screenPicking = true;
  renderScreenButton();
  /** @type {MediaStream} */
  let stream;
  try {
    stream = await pickScreen();
  } catch (error) {
    // Refused or nothing to share: say so; the call itself is untouched.
    showNotice("screen", refusalText(error), { kind: "warn", dismissible: true, timeoutMs: 10_000 });
    return;
  } finally {
    state.screenPicking = false;
    renderScreenButton();
  }
  if (state.call !== call || state.screenStream) {
    // The call ended (or another share started) while the browser asked.
    for (const track of stream.getTracks()) track.stop();
    return;
  }
  startSharing(stream);
}

/** @param {MediaStream} stream */
function startSharing(stream) {
  const video = stream.getVideoTracks()[0];
  if (!video) {
    for (const track of stream.getTracks()) track.stop();
    showNotice("screen", UNAVAILABLE, { kind: "warn", dismissible: true, timeoutMs: 10_000 });
    return;
  }
  // Text and lines over motion: peer.js also keeps resolution over frame rate for this track.
  video.contentHint = "detail";
  // The browser's own "Stop sharing" ends the track.
  video.addEventListener("ended", () => {
    if (state.screenStream === stream) stopScreenShare();
  });
  clearNotice("screen");
  state.screenStream = stream;
  setOwnScreen(stream);
  state.call?.shareScreen(stream);
  renderScreenButton();
}

/**
 * Stop sharing: the tracks end, our preview goes, and the server idles the screen's m-lines.
 * @param {{tellServer?: boolean}} [options] false when the server refused the share, or the call is over
 */
export function stopScreenShare(options = {}) {
  const stream = state.screenStream;
  if (!stream) return;
  state.screenStream = null;
  for (const track of stream.getTracks()) track.stop();
  state.call?.stopScreenShare(options);
  setOwnScreen(null);
  renderScreenButton();
}

/**
 * The server refused the share (`too_many_screen_shares`): say why, and stop locally.
 * @param {string} message the server's, for people
 */
export function screenShareRefused(message) {
  stopScreenShare({ tellServer: false });
  showNotice("screen", message, { kind: "warn", dismissible: true, timeoutMs: 10_000 });
}

export function wireScreenButton() {
  screenButton().addEventListener("click", () => void toggleScreenShare());
  renderScreenButton();
}
