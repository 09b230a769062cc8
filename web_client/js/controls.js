// The pre-join toggles and the call's control bar: what each button says and whether it can act.

import { ui } from "./dom.js";
import { updateMutedTalkWatch } from "./muted-talk.js";
import { showNotice } from "./notices.js";
import { hasAudioTrack, hasVideoTrack, state } from "./state.js";
import { setTileMedia, setTileRoles } from "./tiles.js";

/**
 * @typedef {object} ToggleState
 * @property {boolean} available the device's track exists
 * @property {boolean} on
 * @property {string} onText shown while the device is on (the action turns it off)
 * @property {string} offText
 * @property {string} missingText
 */

/**
 * @param {HTMLButtonElement} button
 * @param {ToggleState} toggle
 */
function renderToggle(button, toggle) {
  button.disabled = !toggle.available;
  button.setAttribute("aria-pressed", String(!(toggle.available && toggle.on)));
  button.textContent = !toggle.available ? toggle.missingText : toggle.on ? toggle.onText : toggle.offText;
}

export function renderPrejoinToggles() {
  renderToggle(ui.prejoinMic, {
    available: hasAudioTrack(),
    on: state.wantAudio,
    onText: "Turn off microphone",
    offText: "Turn on microphone",
    missingText: state.mediaSettled ? "No microphone" : "Microphone…",
  });
  renderToggle(ui.prejoinCam, {
    available: hasVideoTrack(),
    on: state.wantVideo,
    onText: "Turn off camera",
    offText: "Turn on camera",
    missingText: state.mediaSettled ? "No camera" : "Camera…",
  });
  ui.previewOff.hidden = hasVideoTrack() && state.wantVideo;
  ui.previewOff.textContent = !state.mediaSettled ? "Starting camera…" : hasVideoTrack() ? "Camera is off" : "No camera";
}

function renderMicButton() {
  renderToggle(ui.micButton, {
    available: hasAudioTrack(),
    on: state.wantAudio,
    onText: "Mute",
    offText: "Unmute",
    missingText: "Unmute",
  });
  ui.micButton.title = hasAudioTrack() ? "" : "No microphone available";
  if (state.mutedByHost) {
    // The relay does not forward our audio: the button can do nothing until a host allows it.
    ui.micButton.disabled = true;
    ui.micButton.setAttribute("aria-pressed", "true");
    ui.micButton.textContent = "Muted by host";
    ui.micButton.title = "A host muted you: the others cannot hear you until a host allows your audio.";
  }
}

/** The control bar and our own tile's marks. */
export function renderControls() {
  renderMicButton();
  renderToggle(ui.camButton, {
    available: hasVideoTrack(),
    on: state.wantVideo,
    onText: "Camera off",
    offText: "Camera on",
    missingText: "Camera on",
  });
  ui.camButton.title = hasVideoTrack() ? "" : "No camera available";
  if (state.localTile) {
    setTileMedia(state.localTile, {
      audio: hasAudioTrack() && state.wantAudio && !state.mutedByHost,
      video: hasVideoTrack() && state.wantVideo,
    });
    setTileRoles(state.localTile, state.amHost, state.mutedByHost);
  }
  updateMutedTalkWatch();
}

/** Copy the plain room link: never a fragment (the host token lives in storage, not in the URL). */
export async function copyLink() {
  const link = location.origin + location.pathname;
  const copied = (await copyWithClipboardApi(link)) || copyFromFallbackField(link);
  if (copied) showNotice("copy", "Link copied", { timeoutMs: 3000 });
  else showNotice("copy", "Copy the selected link to share this meeting.", { timeoutMs: 8000 });
}

/** @param {string} link */
async function copyWithClipboardApi(link) {
  if (!navigator.clipboard || typeof navigator.clipboard.writeText !== "function") return false;
  try {
    await navigator.clipboard.writeText(link);
    return true;
  } catch {
    return false; // denied or unavailable: the fallback field
  }
}

/**
 * Show the link selected in a field, for the user to copy if the browser does not.
 * @param {string} link
 */
function copyFromFallbackField(link) {
  ui.copyFallback.value = link;
  ui.copyFallback.hidden = false;
  ui.copyFallback.focus();
  ui.copyFallback.select();
  let copied = false;
  try {
    copied = document.execCommand("copy");
  } catch {
    copied = false;
  }
  if (copied) ui.copyFallback.hidden = true;
  return copied;
}
