// The video grid: one tile per participant (ours first), each with its name, avatar, media marks
// and, on remote tiles, the host's actions menu.

import { t } from "./i18n.js";
import { hostCommand } from "./commands.js";
import { el, focusHeading, makeButton, ui, uniqueId } from "./dom.js";
import { updateLayout } from "./layout.js";
import { setVideoStream } from "./playback.js";
import { clearScreenTiles, setRemoteScreen } from "./screen-tiles.js";
import { state } from "./state.js";

/**
 * @typedef {import("./protocol.js").ParticipantInfo} ParticipantInfo
 * @typedef {import("./protocol.js").MediaState} MediaState
 *
 * @typedef {object} TileMenu host actions on a remote tile (a disclosure: toggle + panel)
 * @property {HTMLElement} wrap
 * @property {HTMLButtonElement} toggle
 * @property {HTMLElement} panel
 * @property {HTMLButtonElement} mute
 * @property {HTMLButtonElement} makeHost
 * @property {HTMLButtonElement} remove
 * @property {HTMLButtonElement} lowerHand shown while their hand is up (hands.js)
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
 * @property {HTMLElement} handBadge "✋ 1": the order of this raised hand (hands.js)
 * @property {TileMenu | null} menu
 * @property {string} name
 * @property {boolean} host
 * @property {boolean} mutedByHost
 */

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

/** @param {boolean} local */
function createVideo(local) {
  const video = document.createElement("video");
  video.className = "tile__video";
  video.autoplay = true;
  video.playsInline = true;
  video.setAttribute("playsinline", "");
  if (local) {
    video.muted = true;
    video.setAttribute("muted", "");
    video.classList.add("mirror");
  }
  return video;
}

/**
 * @param {string} name
 * @param {boolean} local
 * @param {string} [participantId]
 * @returns {Tile}
 */
export function createTile(name, local, participantId = "") {
  const root = el("div", "tile");
  if (local) root.setAttribute("data-local", "");
  const video = createVideo(local);
  const avatar = el("div", "tile__avatar");
  avatar.setAttribute("aria-hidden", "true");
  const footer = el("div", "tile__footer");
  const micOff = el("span", "tile__mic-off");
  micOff.setAttribute("role", "img");
  micOff.setAttribute("aria-label", t("page.tile.mic_muted"));
  micOff.title = t("page.tile.mic_muted");
  const nameEl = el("span", "tile__name");
  nameEl.id = uniqueId("tile-name");
  const hostBadge = el("span", "tile__badge tile__badge--host", t("page.call.host"));
  hostBadge.hidden = true;
  const mutedBadge = el("span", "tile__badge tile__badge--muted", t("page.call.muted_by_host"));
  mutedBadge.hidden = true;
  const handBadge = el("span", "tile__badge tile__badge--hand");
  handBadge.hidden = true;
  footer.append(micOff, nameEl, handBadge, hostBadge, mutedBadge);
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
    handBadge,
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
  wrap.hidden = !state.amHost;
  const toggle = makeButton("•••", "button button--small tile__menu-toggle");
  toggle.setAttribute("aria-label", t("page.tile.host_actions"));
  toggle.setAttribute("aria-describedby", tile.nameEl.id);
  toggle.setAttribute("aria-expanded", "false");
  const panel = el("div", "tile__menu-panel");
  panel.id = uniqueId("tile-menu");
  panel.hidden = true;
  toggle.setAttribute("aria-controls", panel.id);
  const mute = makeButton(t("page.call.mute"));
  const makeHost = makeButton(t("page.tile.make_host"));
  const remove = makeButton(t("page.tile.remove"), "button button--small button--danger");
  const lowerHand = makeButton(t("page.tile.lower_hand"));
  lowerHand.hidden = true;
  for (const button of [mute, makeHost, remove, lowerHand]) button.setAttribute("aria-describedby", tile.nameEl.id);
  panel.append(lowerHand, mute, makeHost, remove);
  wrap.append(toggle, panel);
  /** @type {TileMenu} */
  const menu = { wrap, toggle, panel, mute, makeHost, remove, lowerHand };

  toggle.addEventListener("click", () => setMenuOpen(menu, toggle.getAttribute("aria-expanded") !== "true"));
  mute.addEventListener("click", () => {
    closeMenuAfterAction(menu);
    hostCommand((current) => current.mute(tile.id, !tile.mutedByHost));
  });
  makeHost.addEventListener("click", () => {
    closeMenuAfterAction(menu);
    hostCommand((current) => current.makeHost(tile.id));
  });
  remove.addEventListener("click", () => {
    closeMenuAfterAction(menu);
    hostCommand((current) => current.remove(tile.id));
  });
  lowerHand.addEventListener("click", () => {
    closeMenuAfterAction(menu);
    hostCommand((current) => current.lowerHand(tile.id));
  });
  return menu;
}

/**
 * Close the menu an action was chosen from, and give its "•••" button the focus: the clicked item
 * is hidden with the panel, and the focus would otherwise fall to <body>.
 * @param {TileMenu} menu
 */
function closeMenuAfterAction(menu) {
  setMenuOpen(menu, false);
  menu.toggle.focus();
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
export function closeMenus(except = null) {
  for (const tile of state.tiles.values()) {
    const menu = tile.menu;
    if (menu && !menu.panel.hidden && !(except && menu.wrap.contains(except))) setMenuOpen(menu, false);
  }
}

/** Escape: close the open menu and give its toggle the focus back. */
export function closeMenusFromKeyboard() {
  for (const tile of state.tiles.values()) {
    const menu = tile.menu;
    if (menu && !menu.panel.hidden) {
      setMenuOpen(menu, false);
      menu.toggle.focus();
    }
  }
}

/**
 * Show the host's menus on the remote tiles, or hide (and close) them.
 * @param {boolean} host
 */
export function showTileMenus(host) {
  for (const tile of state.tiles.values()) {
    if (!tile.menu) continue;
    tile.menu.wrap.hidden = !host;
    if (!host) setMenuOpen(tile.menu, false);
  }
}

/**
 * Show the host badge and the "muted by host" marks of a tile.
 * @param {Tile} tile
 * @param {boolean} host
 * @param {boolean} muted
 */
export function setTileRoles(tile, host, muted) {
  tile.host = host;
  tile.mutedByHost = muted;
  tile.hostBadge.hidden = !host;
  tile.mutedBadge.hidden = !muted;
  tile.root.classList.toggle("tile--host", host);
  tile.root.classList.toggle("tile--muted-by-host", muted);
  if (tile.menu) {
    tile.menu.mute.textContent = muted ? t("page.tile.allow_audio") : t("page.call.mute");
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
export function setTileMedia(tile, media) {
  tile.root.classList.toggle("tile--audio-off", !media.audio);
  tile.root.classList.toggle("tile--video-off", !media.video);
  tile.micOff.hidden = media.audio;
}

/**
 * Our own tile, first in the grid, showing our camera.
 * @returns {Tile}
 */
export function addLocalTile() {
  const tile = createTile(state.displayName, true);
  state.localTile = tile;
  ui.grid.append(tile.root);
  updateLayout();
  setVideoStream(tile.video, state.localStream);
  return tile;
}

/** @param {ParticipantInfo} participant */
export function upsertParticipant(participant) {
  let tile = state.tiles.get(participant.id);
  if (!tile) {
    tile = createTile(participant.name, false, participant.id);
    tile.root.setAttribute("data-participant", participant.id);
    tile.root.toggleAttribute("data-speaking", state.speaking.has(participant.id));
    state.tiles.set(participant.id, tile);
    ui.grid.append(tile.root);
    setVideoStream(tile.video, state.remoteStreams.get(participant.id) ?? null);
    updateLayout();
  } else if (tile.name !== participant.name) {
    setTileName(tile, participant.name, false);
  }
  setTileMedia(tile, participant.media ?? { audio: true, video: true });
  setTileRoles(tile, participant.host === true, participant.muted_by_host === true);
}

/** @param {string} participantId */
export function removeParticipant(participantId) {
  const tile = state.tiles.get(participantId);
  if (tile) {
    // Removed from its own menu (or gone while its menu had the focus): the call's heading gets
    // the focus, not <body>.
    const hadFocus = tile.root.contains(document.activeElement);
    tile.video.srcObject = null;
    tile.root.remove();
    state.tiles.delete(participantId);
    if (hadFocus) focusHeading(ui.call);
  }
  state.remoteStreams.delete(participantId);
  if (state.featuredSpeaker === participantId) state.featuredSpeaker = null;
  setRemoteScreen(participantId, null);
  updateLayout();
}

/**
 * A participant's media stream arrived, changed or went away (null).
 * @param {string} participantId
 * @param {MediaStream | null} stream
 */
export function setRemoteStream(participantId, stream) {
  if (stream) state.remoteStreams.set(participantId, stream);
  else state.remoteStreams.delete(participantId);
  const tile = state.tiles.get(participantId);
  if (tile) setVideoStream(tile.video, stream);
}

export function clearGrid() {
  for (const tile of state.tiles.values()) tile.video.srcObject = null;
  state.tiles.clear();
  state.remoteStreams.clear();
  if (state.localTile) state.localTile.video.srcObject = null;
  state.localTile = null;
  clearScreenTiles();
  ui.grid.replaceChildren();
  updateLayout();
}
