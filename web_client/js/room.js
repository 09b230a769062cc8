// meetnow room page, the entry point: wires the page's controls to the modules that do the work.
//   state.js        the page's one state object      identity.js  room id, host token, session id
//   dom.js          the page's elements, helpers     tabs.js      one participant per session
//   notices.js      the status area                  media.js     microphone and camera
//   controls.js     toggles and control bar          tiles.js     the video grid
//   host.js         host bar and lobby               commands.js  host commands, sent or refused
//   call.js         join, leave, rejoin              call-events.js  the call's events, shown
//   ended.js        the "not in the meeting" screen  playback.js  <video> playback
//   screen.js       sharing our screen               screen-tiles.js  the screens' tiles
//   speakers.js     who speaks, speaker view         layout.js    grid or stage + strip
//   muted-talk.js   "You are muted"                  devices.js   camera, microphone, speaker choice
//   quality.js      connection quality per tile      support.js   can this browser call at all
// The protocol (websocket, peer connection) lives in protocol.js and the modules it imports: no DOM.

import { join, leave, rejoin } from "./call.js";
import { copyLink, renderControls, renderPrejoinToggles } from "./controls.js";
import { showScreen, ui } from "./dom.js";
import { hideEndConfirm, renderRoomState, wireHostBar } from "./host.js";
import { loadDisplayName } from "./identity.js";
import { applyWantedMedia, startMedia } from "./media.js";
import { wireScreenButton } from "./screen.js";
import { wireViewButton } from "./speakers.js";
import { state } from "./state.js";
import { ensureOwnSession, listenToOtherTabs } from "./tabs.js";
import { closeMenus, closeMenusFromKeyboard } from "./tiles.js";
import { startNetworkCheck } from "./netcheck-view.js";
import { wireDevices } from "./devices.js";
import { startQualityMonitor } from "./quality.js";
import { callSupport, showUnsupportedBrowser } from "./support.js";
import { wireTalk } from "./talk.js";

function wirePrejoin() {
  ui.prejoinMic.addEventListener("click", () => {
    state.wantAudio = !state.wantAudio;
    applyWantedMedia();
    renderPrejoinToggles();
  });
  ui.prejoinCam.addEventListener("click", () => {
    state.wantVideo = !state.wantVideo;
    applyWantedMedia();
    renderPrejoinToggles();
  });
  ui.joinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    void join();
  });
}

function wireControlBar() {
  ui.micButton.addEventListener("click", () => {
    if (state.mutedByHost) return;
    state.wantAudio = !state.wantAudio;
    if (state.call) state.call.setAudioEnabled(state.wantAudio);
    else applyWantedMedia();
    renderControls();
  });
  ui.camButton.addEventListener("click", () => {
    state.wantVideo = !state.wantVideo;
    if (state.call) state.call.setVideoEnabled(state.wantVideo);
    else applyWantedMedia();
    renderControls();
  });
  ui.copyButton.addEventListener("click", () => void copyLink());
  ui.copyFallback.addEventListener("blur", () => {
    ui.copyFallback.hidden = true;
  });
  ui.leaveButton.addEventListener("click", leave);
  ui.waitingLeaveButton.addEventListener("click", leave);
  ui.rejoinButton.addEventListener("click", () => void rejoin());
  ui.retryButton.addEventListener("click", () => void rejoin());
}

/** Clicks outside a tile's menu close it; Escape closes the open menu or the end confirmation. */
function wireDismissal() {
  document.addEventListener("click", (event) => {
    closeMenus(event.target instanceof Node ? event.target : null);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    if (!ui.endConfirm.hidden) hideEndConfirm();
    closeMenusFromKeyboard();
  });
}

listenToOtherTabs();
// Asked once, as the page loads (a duplicated tab is the case it catches), so the Join click
// never waits for the answer.
state.sessionChecked = ensureOwnSession();
wirePrejoin();
wireControlBar();
wireScreenButton();
wireViewButton();
wireHostBar();
wireTalk();
wireDismissal();
ui.nameInput.value = loadDisplayName();
ui.hostHint.hidden = state.hostToken === null;
showScreen(ui.prejoin);
renderPrejoinToggles();
renderRoomState();
wireDevices();
startQualityMonitor();
// Said at load, before the camera is asked for or a name typed (devices.js, quality.js, support.js).
const support = callSupport();
if (support.supported) startMedia();
else showUnsupportedBrowser(support);
// The room exists (its page was served): check the network now; it never blocks Join.
startNetworkCheck(state.roomId);
