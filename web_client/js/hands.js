// Raised hands: the "Raise hand" / "Lower hand" button, and on every tile (and the participant
// list, participants.js) the `data-hand-raised` attribute and a "✋ N" badge giving the order in
// which the hands went up (by the server's hand_raised_at, ties by id: every page agrees).

import { ordinal, t } from "./i18n.js";
import { makeButton, ui } from "./dom.js";
import { showNotice } from "./notices.js";
import { handOrder } from "./roster.js";
import { state } from "./state.js";

/** @typedef {import("./tiles.js").Tile} Tile */

export const STRINGS = Object.freeze({
  raise: t("page.hands.raise"),
  lower: t("page.hands.lower"),
  /** @param {number} order */
  badge: (order) => `✋ ${order}`,
  /** @param {number} order */
  badgeLabel: (order) => t("page.hands.badge_label", { ordinal: ordinal(order) }),
  notConnected: t("page.notice.not_connected"),
});

const handButton = makeButton(STRINGS.raise, "button control control--hand");
handButton.id = "hand-button";
handButton.hidden = true;

/** Put the button in the control bar. */
export function wireHandButton() {
  ui.copyButton.before(handButton);
  handButton.addEventListener("click", () => {
    const raise = state.roster.ownHandRaisedAt === null;
    // The label changes when the server says so (self-updated), so it never lies.
    if (!state.call || !state.call.raiseHand(raise)) {
      showNotice("hand", STRINGS.notConnected, { kind: "warn", timeoutMs: 5000 });
    }
  });
}

/** @param {boolean} inCall */
export function showHandButton(inCall) {
  handButton.hidden = !inCall;
}

/** @returns {string} our participant id now ("" before joined) */
export function ownId() {
  return state.call?.participantId ?? state.localTile?.id ?? "";
}

/**
 * Every raised hand's order, ours included.
 * @returns {Map<string, number>}
 */
export function currentHandOrder() {
  const people = [...state.roster.people.values()].map((participant) => ({
    id: participant.id,
    handRaisedAt: typeof participant.hand_raised_at === "number" ? participant.hand_raised_at : null,
  }));
  people.push({ id: ownId(), handRaisedAt: state.roster.ownHandRaisedAt });
  return handOrder(people);
}

/**
 * A tile's hand: the attribute (its value is the order), the badge, and the host's "Lower hand".
 * @param {Tile} tile
 * @param {number | null} order
 */
function setTileHand(tile, order) {
  if (order === null) tile.root.removeAttribute("data-hand-raised");
  else tile.root.setAttribute("data-hand-raised", String(order));
  tile.handBadge.hidden = order === null;
  tile.handBadge.textContent = order === null ? "" : STRINGS.badge(order);
  if (order === null) tile.handBadge.removeAttribute("aria-label");
  else tile.handBadge.setAttribute("aria-label", STRINGS.badgeLabel(order));
  tile.handBadge.setAttribute("role", "img");
  if (tile.menu) tile.menu.lowerHand.hidden = order === null;
}

/** Show every hand where it belongs: tiles and our button. */
export function renderHands() {
  const order = currentHandOrder();
  for (const tile of state.tiles.values()) setTileHand(tile, order.get(tile.id) ?? null);
  if (state.localTile) setTileHand(state.localTile, state.roster.ownHandRaisedAt === null ? null : order.get(ownId()) ?? null);
  handButton.textContent = state.roster.ownHandRaisedAt === null ? STRINGS.raise : STRINGS.lower;
  handButton.toggleAttribute("data-raised", state.roster.ownHandRaisedAt !== null);
}
