// How the grid lays its tiles out: a plain grid sized by the number of tiles, or a "stage" (the
// main area) with the other tiles in a strip: every shared screen while someone shares, else in
// speaker view the featured speaker.

import { ui } from "./dom.js";
import { state } from "./state.js";

/** @returns {HTMLElement | null} the tile speaker view shows large */
function featuredTile() {
  const featured = state.featuredSpeaker !== null ? state.tiles.get(state.featuredSpeaker) : undefined;
  if (featured) return featured.root;
  // Nobody else has spoken yet: the first other participant (we never feature ourselves).
  const first = state.tiles.values().next();
  return first.done ? null : first.value.root;
}

/** @param {number} count */
function gridLayout(count) {
  return count <= 1 ? "1" : count === 2 ? "2" : count <= 4 ? "4" : count <= 9 ? "9" : "many";
}

/** Lay the tiles out again: after a tile came or went, a share started or stopped, or the view changed. */
export function updateLayout() {
  const tiles = [...ui.grid.children].filter((child) => child instanceof HTMLElement);
  /** @type {Element[]} */
  let staged = tiles.filter((tile) => tile.hasAttribute("data-screen"));
  if (staged.length === 0 && state.speakerView && tiles.length > 1) {
    const featured = featuredTile();
    if (featured) staged = [featured];
  }
  for (const tile of tiles) tile.toggleAttribute("data-stage", staged.includes(tile));
  ui.grid.dataset.count = String(tiles.length);
  ui.grid.dataset.layout = staged.length > 0 ? "stage" : gridLayout(tiles.length);
}
