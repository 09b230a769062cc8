// Who is speaking, as the relay hears it: `data-speaking` on each speaking person's tile (ours
// too), and speaker view, which shows the dominant speaker large.

import { t } from "./i18n.js";
import { updateLayout } from "./layout.js";
import { state } from "./state.js";

/**
 * @typedef {import("./protocol.js").SpeakersDetail} SpeakersDetail
 * @typedef {import("./tiles.js").Tile} Tile
 */

/** @returns {HTMLButtonElement} */
function viewButton() {
  const button = document.getElementById("view-button");
  if (!(button instanceof HTMLButtonElement)) throw new Error("meetnow: #view-button is missing from the page");
  return button;
}

/** @returns {Tile[]} every participant's tile, ours included */
function personTiles() {
  const tiles = [...state.tiles.values()];
  if (state.localTile) tiles.push(state.localTile);
  return tiles;
}

function markSpeakingTiles() {
  for (const tile of personTiles()) tile.root.toggleAttribute("data-speaking", tile.id !== "" && state.speaking.has(tile.id));
}

/** The relay's news: who speaks now, who holds the floor. @param {SpeakersDetail} detail */
export function setSpeakers(detail) {
  state.speaking = new Set(detail.speaking);
  const ownId = state.localTile?.id ?? "";
  // Speaker view never shows ourselves large: it keeps the last other person who held the floor.
  if (detail.dominant !== null && detail.dominant !== ownId && state.tiles.has(detail.dominant)) {
    state.featuredSpeaker = detail.dominant;
  }
  markSpeakingTiles();
  if (state.speakerView) updateLayout();
}

/** Nobody speaks (a new connection, or the call is over): the marks go, the view stays. */
export function clearSpeakers() {
  state.speaking = new Set();
  state.featuredSpeaker = null;
  markSpeakingTiles();
}

/** The button names the view it switches to. */
export function renderViewButton() {
  viewButton().textContent = state.speakerView ? t("page.call.grid_view") : t("page.call.speaker_view");
}

export function toggleSpeakerView() {
  state.speakerView = !state.speakerView;
  renderViewButton();
  updateLayout();
}

export function wireViewButton() {
  viewButton().addEventListener("click", toggleSpeakerView);
  renderViewButton();
}
