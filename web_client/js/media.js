// This browser's microphone and camera: asked for once the page loads, degrading to whatever is
// available (possibly nothing), and released when the call ends.

import { renderPrejoinToggles } from "./controls.js";
import { VIDEO_CONSTRAINTS, listDevices, preferredConstraints } from "./device-store.js";
import { onLocalMediaReady } from "./devices.js";
import { ui } from "./dom.js";
import { t } from "./i18n.js";
import { clearNotice, showNotice } from "./notices.js";
import { setVideoStream } from "./playback.js";
import { hasVideoTrack, state } from "./state.js";

/**
 * @typedef {object} MediaResult
 * @property {MediaStream} stream
 * @property {string | null} notice what the user should know about missing devices
 */

/** @returns {MediaResult | null} */
function unavailableMedia() {
  const devices = navigator.mediaDevices;
  if (devices && typeof devices.getUserMedia === "function") return null;
  return {
    stream: new MediaStream(),
    notice: window.isSecureContext
      ? t("page.media.unavailable")
      : t("page.media.insecure"),
  };
}

/**
 * Microphone and camera, degrading to whatever is available (possibly nothing).
 * @returns {Promise<MediaResult>}
 */
async function acquireMedia() {
  const unavailable = unavailableMedia();
  if (unavailable) return unavailable;
  /** @type {unknown[]} */
  const errors = [];
  /** @param {MediaStreamConstraints} constraints */
  const attempt = async (constraints) => {
    try {
      return await navigator.mediaDevices.getUserMedia(constraints);
    } catch (error) {
      errors.push(error);
      return null;
    }
  };
  // The devices chosen last on this browser, if still there (devices.js); if they cannot be
  // opened, the browser's defaults before going without.
  const listed = await listDevices();
  const preferred = { audio: preferredConstraints("audioinput", listed), video: preferredConstraints("videoinput", listed) };
  const chosen = "deviceId" in preferred.audio || "deviceId" in preferred.video;
  const both = (await attempt(preferred)) ?? (chosen ? await attempt({ audio: true, video: VIDEO_CONSTRAINTS }) : null);
  if (both) return { stream: both, notice: null };
  const audio = await attempt({ audio: true });
  if (audio) return { stream: audio, notice: t("page.media.no_camera") };
  const video = await attempt({ video: VIDEO_CONSTRAINTS });
  if (video) return { stream: video, notice: t("page.media.no_microphone") };
  const blocked = errors.some(
    (error) => error instanceof DOMException && (error.name === "NotAllowedError" || error.name === "SecurityError"),
  );
  return {
    stream: new MediaStream(),
    notice: blocked
      ? t("page.media.blocked")
      : t("page.media.none"),
  };
}

/**
 * Ask for the devices; once answered, show them (preview, our tile) and say what is missing.
 * @returns {Promise<MediaResult>}
 */
export function startMedia() {
  state.mediaSettled = false;
  const promise = acquireMedia().then((result) => {
    if (state.mediaPromise !== promise) {
      // Superseded (left the page state meanwhile): release the devices.
      for (const track of result.stream.getTracks()) track.stop();
      return result;
    }
    state.mediaSettled = true;
    state.localStream = result.stream;
    applyWantedMedia();
    onLocalMediaReady();
    if (result.notice) showNotice("media", result.notice, { kind: "warn", dismissible: true });
    else clearNotice("media");
    setVideoStream(ui.preview, hasVideoTrack() ? state.localStream : null);
    if (state.localTile) setVideoStream(state.localTile.video, state.localStream);
    renderPrejoinToggles();
    return result;
  });
  state.mediaPromise = promise;
  return promise;
}

/** Release the devices (the camera light goes off). */
export function stopMedia() {
  state.mediaPromise = null;
  for (const track of state.localStream.getTracks()) track.stop();
  state.localStream = new MediaStream();
  ui.preview.srcObject = null;
}

/** Enable or disable our tracks as the toggles say. */
export function applyWantedMedia() {
  for (const track of state.localStream.getAudioTracks()) track.enabled = state.wantAudio;
  for (const track of state.localStream.getVideoTracks()) track.enabled = state.wantVideo;
}
