// Joining, leaving and joining again: the steps from the Join button to a running call.

import { t } from "./i18n.js";
import { listenToCall, resetAfterCall } from "./call-events.js";
import { renderControls } from "./controls.js";
import { showScreen, showTopic, ui } from "./dom.js";
import { saveDisplayName } from "./identity.js";
import { applyWantedMedia, startMedia } from "./media.js";
import { clearNotice, clearNotices, showNotice } from "./notices.js";
import { MeetnowCall } from "./protocol.js";
import { state } from "./state.js";
import { addLocalTile, clearGrid } from "./tiles.js";

const MAX_NAME_LENGTH = 64;

/** The Join button: remember the name, wait for the devices and the other tabs, then call. */
export async function join() {
  if (state.joining || state.inCall) return;
  state.joining = true;
  ui.joinButton.disabled = true;
  try {
    state.displayName = ui.nameInput.value.trim().slice(0, MAX_NAME_LENGTH) || t("page.prejoin.default_name");
    saveDisplayName(state.displayName);
    if (!state.mediaPromise) startMedia();
    if (!state.mediaSettled) showNotice("waiting", t("page.call.waiting_media"));
    await state.mediaPromise;
    clearNotice("waiting");
    await state.sessionChecked;
    startCall();
  } finally {
    state.joining = false;
    ui.joinButton.disabled = false;
  }
}

/** Rejoin directly (after leaving or a retryable error), same name, same session. */
export async function rejoin() {
  clearNotices();
  startMedia();
  await join();
}

export function leave() {
  const current = state.call;
  state.call = null;
  state.inCall = false;
  if (current) current.leave();
  resetAfterCall();
  showTopic("");
  showScreen(ui.left);
}

function startCall() {
  showCallScreen();
  const current = new MeetnowCall({
    roomId: state.roomId,
    name: state.displayName,
    session: state.sessionId,
    stream: state.localStream,
    hostToken: state.hostToken,
  });
  state.call = current;
  state.inCall = true;
  state.everJoined = false;
  listenToCall(current);
  showNotice("connecting", t("page.call.connecting"));
  current.start();
}

/** The call's screen with only our own tile, before the server answers. */
function showCallScreen() {
  // The pre-join screen is never shown again (Rejoin joins directly): drop it, so the page holds
  // exactly one <video> per tile.
  if (ui.prejoin.isConnected) {
    ui.preview.srcObject = null;
    ui.prejoin.remove();
  }
  clearNotices("media");
  applyWantedMedia();
  clearGrid();
  state.endedByMe = false;
  state.mutedByHost = false;
  addLocalTile();
  renderControls();
  showScreen(ui.call);
}
