// Screen tiles: one per shared screen, marked `data-screen` with the sharer's `data-participant`
// (ours too, as a local preview). While any exists, the layout gives screens the main area.

import { t } from "./i18n.js";
import { el, ui, uniqueId } from "./dom.js";
import { updateLayout } from "./layout.js";
import { setVideoStream } from "./playback.js";
import { state } from "./state.js";

/**
 * @typedef {object} ScreenTile
 * @property {HTMLElement} root
 * @property {HTMLVideoElement} video
 * @property {HTMLElement} nameEl
 */

/** Key of our own screen in state.screenTiles (participant ids are never empty). */
const OWN = "";

/**
 * @param {string} label what the tile shows, e.g. "Ada's screen" (a user's name: textContent only)
 * @param {boolean} local
 * @returns {ScreenTile}
 */
function createScreenTile(label, local) {
  const root = el("div", "tile tile--screen");
  root.setAttribute("data-screen", "");
  if (local) root.setAttribute("data-local", "");
  const video = document.createElement("video");
  video.className = "tile__video";
  video.autoplay = true;
  video.playsInline = true;
  video.setAttribute("playsinline", "");
  // Our own screen never plays back its tab audio (an echo of what the others hear).
  if (local) {
    video.muted = true;
    video.setAttribute("muted", "");
  }
  const footer = el("div", "tile__footer");
  const nameEl = el("span", "tile__name", label);
  nameEl.id = uniqueId("screen-name");
  footer.append(nameEl);
  root.append(video, footer);
  root.setAttribute("role", "group");
  root.setAttribute("aria-labelledby", nameEl.id);
  return { root, video, nameEl };
}

/** @param {ScreenTile} tile */
function dropTile(tile) {
  tile.video.srcObject = null;
  tile.root.remove();
}

/**
 * Someone else's screen arrived, changed or stopped (null).
 * @param {string} participantId
 * @param {MediaStream | null} stream
 */
export function setRemoteScreen(participantId, stream) {
  let tile = state.screenTiles.get(participantId);
  if (!stream) {
    if (tile) dropTile(tile);
    state.screenTiles.delete(participantId);
    updateLayout();
    return;
  }
  if (!tile) {
    const name = state.tiles.get(participantId)?.name || t("page.tile.someone");
    tile = createScreenTile(`${name}'s screen`, false);
    tile.root.setAttribute("data-participant", participantId);
    state.screenTiles.set(participantId, tile);
    ui.grid.append(tile.root);
    updateLayout();
  }
  setVideoStream(tile.video, stream);
}

/**
 * Our own screen's preview: shown while we share, gone (null) when we stop.
 * @param {MediaStream | null} stream
 */
export function setOwnScreen(stream) {
  const tile = state.screenTiles.get(OWN);
  if (!stream) {
    if (tile) dropTile(tile);
    state.screenTiles.delete(OWN);
    updateLayout();
    return;
  }
  if (tile) {
    setVideoStream(tile.video, stream);
    return;
  }
  const created = createScreenTile(t("page.tile.your_screen"), true);
  const ownId = state.localTile?.id;
  if (ownId) created.root.setAttribute("data-participant", ownId);
  state.screenTiles.set(OWN, created);
  ui.grid.append(created.root);
  setVideoStream(created.video, stream);
  updateLayout();
}

/**
 * Our participant id is known (or changed, after a reconnect): our screen tile carries it.
 * @param {string} participantId
 */
export function setOwnScreenId(participantId) {
  state.screenTiles.get(OWN)?.root.setAttribute("data-participant", participantId);
}

/** Every screen tile goes (the call is over); `keepOwn` keeps our preview (a reconnect). */
export function clearScreenTiles(keepOwn = false) {
  for (const [key, tile] of [...state.screenTiles]) {
    if (keepOwn && key === OWN) continue;
    dropTile(tile);
    state.screenTiles.delete(key);
  }
  updateLayout();
}
