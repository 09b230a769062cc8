// Host controls: the host bar (lock, lobby, end for everyone), the room's settings as shown, and the
// lobby panel where hosts admit or deny the people waiting.

import { t } from "./i18n.js";
import { hostCommand } from "./commands.js";
import { el, makeButton, ui, uniqueId } from "./dom.js";
import { state } from "./state.js";
import { setTileRoles, showTileMenus } from "./tiles.js";

/**
 * @typedef {import("./protocol.js").KnockInfo} KnockInfo
 * @typedef {import("./protocol.js").RoomInfo} RoomInfo
 *
 * @typedef {object} Knock
 * @property {HTMLElement} root
 * @property {HTMLButtonElement[]} buttons
 * @property {ReturnType<typeof setTimeout> | null} timer
 */

/** @param {boolean} host */
export function setHost(host) {
  state.amHost = host;
  ui.hostBar.hidden = !host;
  if (!host) {
    hideEndConfirm();
    clearKnocks();
  }
  showTileMenus(host);
  if (state.localTile) setTileRoles(state.localTile, state.amHost, state.mutedByHost);
  renderLobby();
  renderRoomState();
}

/** @param {RoomInfo | null | undefined} room */
export function setRoomState(room) {
  state.room = { locked: room?.locked === true, lobby: room?.lobby === true };
  renderRoomState();
}

export function renderRoomState() {
  const { locked, lobby } = state.room;
  ui.lockedBadge.hidden = !locked;
  // The labels say the state (no aria-pressed, which would say it twice); `data-on` colours them.
  ui.lockButton.toggleAttribute("data-on", locked);
  ui.lobbyButton.toggleAttribute("data-on", lobby);
  ui.lockButton.textContent = locked ? t("page.call.unlock") : t("page.call.lock");
  ui.lockButton.title = locked ? t("page.call.unlock_title") : t("page.call.lock_title");
  ui.lobbyButton.textContent = lobby ? t("page.call.lobby_on") : t("page.call.lobby_off");
  ui.lobbyButton.title = lobby
    ? t("page.call.lobby_on_title")
    : t("page.call.lobby_off_title");
}

export function showEndConfirm() {
  ui.endButton.hidden = true;
  ui.endConfirm.hidden = false;
  ui.endConfirmButton.disabled = false;
  ui.endCancelButton.focus();
}

export function hideEndConfirm() {
  const hadFocus = ui.endConfirm.contains(document.activeElement);
  ui.endConfirm.hidden = true;
  ui.endButton.hidden = false;
  if (hadFocus && state.amHost) ui.endButton.focus();
}

/** The host bar's buttons. */
export function wireHostBar() {
  ui.lockButton.addEventListener("click", () => {
    hostCommand((current) => current.setLocked(!state.room.locked));
  });
  ui.lobbyButton.addEventListener("click", () => {
    hostCommand((current) => current.setLobby(!state.room.lobby));
  });
  ui.endButton.addEventListener("click", showEndConfirm);
  ui.endCancelButton.addEventListener("click", hideEndConfirm);
  ui.endConfirmButton.addEventListener("click", () => {
    if (hostCommand((current) => current.endMeeting())) {
      state.endedByMe = true;
      ui.endConfirmButton.disabled = true;
    }
  });
}

/** @param {KnockInfo} info */
export function addKnock(info) {
  if (state.knocks.has(info.id)) return;
  const name = typeof info.name === "string" && info.name ? info.name : t("page.call.guest");
  const root = el("li", "knock");
  root.setAttribute("data-knock", info.id);
  const nameEl = el("span", "knock__name", name);
  nameEl.id = uniqueId("knock-name");
  const admit = makeButton(t("page.call.admit"), "button button--small button--primary");
  const deny = makeButton(t("page.call.deny"));
  for (const button of [admit, deny]) button.setAttribute("aria-describedby", nameEl.id);
  const actions = el("span", "knock__actions");
  actions.append(admit, deny);
  root.append(nameEl, actions);
  /** @type {Knock} */
  const knock = { root, buttons: [admit, deny], timer: null };
  admit.addEventListener("click", () => answerKnock(info.id, true));
  deny.addEventListener("click", () => answerKnock(info.id, false));
  state.knocks.set(info.id, knock);
  ui.lobbyList.append(root);
  renderLobby();
}

/**
 * @param {string} participantId
 * @param {boolean} admit
 */
export function answerKnock(participantId, admit) {
  const knock = state.knocks.get(participantId);
  if (!knock) return;
  if (!hostCommand((current) => (admit ? current.admit(participantId) : current.deny(participantId)))) return;
  // Until knock_resolved removes it; a refusal (the room is full...) lets the host try again.
  for (const button of knock.buttons) button.disabled = true;
  if (knock.timer !== null) clearTimeout(knock.timer);
  knock.timer = setTimeout(() => {
    knock.timer = null;
    for (const button of knock.buttons) button.disabled = false;
  }, 4000);
}

/** @param {string} participantId */
export function removeKnock(participantId) {
  const knock = state.knocks.get(participantId);
  if (!knock) return;
  if (knock.timer !== null) clearTimeout(knock.timer);
  knock.root.remove();
  state.knocks.delete(participantId);
  renderLobby();
}

export function clearKnocks() {
  for (const participantId of [...state.knocks.keys()]) removeKnock(participantId);
}

function renderLobby() {
  ui.lobbyPanel.hidden = !(state.amHost && state.knocks.size > 0);
  ui.lobbyCount.textContent = state.knocks.size > 0 ? `(${state.knocks.size} waiting)` : "";
}
