// The pre-join toggles and the call's control bar: what each button says and whether it can act.

import { t } from "./i18n.js";
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
 * A toggle says its state once, in its label ("Mute" / "Unmute"), as the call's other toggles do
 * ("Share screen" / "Stop sharing"): no aria-pressed, or a screen reader would say "Unmute,
 * pressed". `data-off` only colours the button.
 * @param {HTMLButtonElement} button
 * @param {ToggleState} toggle
 */
function renderToggle(button, toggle) {
  button.disabled = !toggle.available;
  button.toggleAttribute("data-off", !(toggle.available && toggle.on));
  button.textContent = !toggle.available ? toggle.missingText : toggle.on ? toggle.onText : toggle.offText;
}

export function renderPrejoinToggles() {
  renderToggle(ui.prejoinMic, {
    available: hasAudioTrack(),
    on: state.wantAudio,
    onText: t("page.prejoin.mic_off"),
    offText: t("page.prejoin.mic_on"),
    missingText: state.mediaSettled ? t("page.prejoin.no_microphone") : t("page.prejoin.microphone_pending"),
  });
  renderToggle(ui.prejoinCam, {
    available: hasVideoTrack(),
    on: state.wantVideo,
    onText: t("page.prejoin.cam_off"),
    offText: t("page.prejoin.cam_on"),
    missingText: state.mediaSettled ? t("page.prejoin.no_camera") : t("page.prejoin.camera_pending"),
  });
  ui.previewOff.hidden = hasVideoTrack() && state.wantVideo;
  ui.previewOff.textContent = !state.mediaSettled ? t("page.prejoin.camera_starting") : hasVideoTrack() ? t("page.prejoin.camera_off") : t("page.prejoin.no_camera");
}

function renderMicButton() {
  renderToggle(ui.micButton, {
    available: hasAudioTrack(),
    on: state.wantAudio,
    onText: t("page.call.mute"),
    offText: t("page.call.unmute"),
    missingText: t("page.call.unmute"),
  });
  ui.micButton.title = hasAudioTrack() ? "" : t("page.call.no_microphone");
  if (state.mutedByHost) {
    // The relay does not forward our audio: the button can do nothing until a host allows it.
    ui.micButton.disabled = true;
    ui.micButton.toggleAttribute("data-off", true);
    ui.micButton.textContent = t("page.call.muted_by_host");
    ui.micButton.title = t("page.call.muted_by_host_title");
  }
}

/** The control bar and our own tile's marks. */
export function renderControls() {
  renderMicButton();
  renderToggle(ui.camButton, {
    available: hasVideoTrack(),
    on: state.wantVideo,
    onText: t("page.call.camera_off"),
    offText: t("page.call.camera_on"),
    missingText: t("page.call.camera_on"),
  });
  ui.camButton.title = hasVideoTrack() ? "" : t("page.call.no_camera");
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
  if (copied) showNotice("copy", t("page.call.link_copied"), { timeoutMs: 3000 });
  else showNotice("copy", t("page.call.copy_by_hand"), { timeoutMs: 8000 });
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
