// The participant list: a "Participants" button opens a panel listing everyone in the call (us
// first, then raised hands in order, hosts, everyone by name), each with the host badge, muted
// state and raised hand; hosts get the host actions on each row and the lobby (admit, deny), so a
// large room is run without hunting for tiles. Names only ever go through textContent.

import { t } from "./i18n.js";
import { updatePanelsLayout, sidePanels } from "./chat-view.js";
import { hostCommand } from "./commands.js";
import { el, makeButton, ui, uniqueId } from "./dom.js";
import { STRINGS as HANDS, currentHandOrder, ownId } from "./hands.js";
import { answerKnock } from "./host.js";
import { handRaisedAt, listOrder } from "./roster.js";
import { hasAudioTrack, state } from "./state.js";

/** @typedef {import("./roster.js").Person} Person */

export const STRINGS = Object.freeze({
  button: t("page.people.button"),
  title: t("page.people.title"),
  /** @param {number} count */
  count: (count) => t("page.people.count", { count }),
  close: t("page.people.close"),
  closeLabel: t("page.people.close_label"),
  you: t("page.people.you"),
  host: t("page.call.host"),
  micOff: t("page.people.mic_off"),
  mutedByHost: t("page.call.muted_by_host"),
  lowerHand: t("page.tile.lower_hand"),
  mute: t("page.call.mute"),
  allowAudio: t("page.tile.allow_audio"),
  makeHost: t("page.tile.make_host"),
  remove: t("page.tile.remove"),
  lobbyTitle: t("page.people.lobby_title"),
  admit: t("page.call.admit"),
  deny: t("page.call.deny"),
  guest: t("page.call.guest"),
});

const view = buildView();

function buildView() {
  const button = makeButton(STRINGS.button, "button control control--participants");
  button.id = "participants-button";
  button.hidden = true;
  button.setAttribute("aria-expanded", "false");
  const countBadge = el("span", "control__count control__count--quiet");
  countBadge.setAttribute("aria-hidden", "true");
  button.append(countBadge);

  const panel = el("aside", "side-panel side-panel--participants");
  panel.id = "participants-panel";
  panel.hidden = true;
  button.setAttribute("aria-controls", panel.id);
  const header = el("div", "side-panel__header");
  const title = el("h2", "side-panel__title");
  title.id = uniqueId("participants-title");
  panel.setAttribute("aria-labelledby", title.id);
  const close = makeButton(STRINGS.close, "button button--small button--quiet");
  close.setAttribute("aria-label", STRINGS.closeLabel);
  header.append(title, close);
  const body = el("div", "side-panel__body");
  body.tabIndex = 0; // scrollable by keyboard when the list overflows (axe: scrollable-region-focusable)
  const lobby = el("section", "people-lobby");
  const lobbyTitle = el("h3", "people-lobby__title");
  lobbyTitle.id = uniqueId("people-lobby-title");
  lobby.setAttribute("aria-labelledby", lobbyTitle.id);
  const lobbyList = el("ul", "people-list");
  lobby.append(lobbyTitle, lobbyList);
  const list = el("ul", "people-list");
  list.setAttribute("aria-labelledby", title.id);
  body.append(lobby, list);
  panel.append(header, body);
  return { button, countBadge, panel, close, title, lobby, lobbyTitle, lobbyList, list };
}

export function wireParticipants() {
  ui.copyButton.before(view.button);
  sidePanels().append(view.panel);
  view.button.addEventListener("click", () => setParticipantsOpen(!state.roster.listOpen));
  view.close.addEventListener("click", () => setParticipantsOpen(false));
  view.panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") setParticipantsOpen(false);
  });
}

/** @param {boolean} open */
export function setParticipantsOpen(open) {
  state.roster.listOpen = open;
  view.panel.hidden = !open;
  view.button.setAttribute("aria-expanded", String(open));
  updatePanelsLayout();
  renderParticipants();
  if (open) view.title.focus();
  else if (view.panel.contains(document.activeElement) || document.activeElement === document.body) view.button.focus();
}

/** @param {boolean} inCall */
export function showParticipantsButton(inCall) {
  view.button.hidden = !inCall;
  if (!inCall && state.roster.listOpen) setParticipantsOpen(false);
}

/** @returns {Person[]} everyone in the call, in the list's order */
function people() {
  const order = currentHandOrder();
  const self = ownId();
  /** @type {Person[]} */
  const rows = [
    {
      id: self,
      name: state.displayName,
      self: true,
      host: state.amHost,
      micOff: !(hasAudioTrack() && state.wantAudio),
      mutedByHost: state.mutedByHost,
      handRaisedAt: state.roster.ownHandRaisedAt,
      handOrder: state.roster.ownHandRaisedAt === null ? null : order.get(self) ?? null,
    },
  ];
  for (const participant of state.roster.people.values()) {
    rows.push({
      id: participant.id,
      name: participant.name,
      self: false,
      host: participant.host === true,
      micOff: participant.media?.audio === false,
      mutedByHost: participant.muted_by_host === true,
      handRaisedAt: handRaisedAt(participant),
      handOrder: order.get(participant.id) ?? null,
    });
  }
  return listOrder(rows);
}

/** Rebuild the list (only while it is open), keeping the focus on the same row's same action. */
export function renderParticipants() {
  const everyone = people();
  view.countBadge.textContent = state.inCall ? ` ${everyone.length}` : "";
  if (!state.roster.listOpen) return;
  const focused = focusedAction();
  view.title.textContent = `${STRINGS.title} ${STRINGS.count(everyone.length)}`;
  view.title.tabIndex = -1;
  view.list.replaceChildren(...everyone.map(personRow));
  renderLobby();
  if (focused) {
    const again = view.panel.querySelector(`[data-row="${CSS.escape(focused.row)}"] [data-action="${focused.action}"]`);
    if (again instanceof HTMLElement) again.focus();
  }
}

/** @returns {{row: string, action: string} | null} */
function focusedAction() {
  const active = document.activeElement;
  if (!(active instanceof HTMLElement) || !view.panel.contains(active)) return null;
  const row = active.closest("[data-row]")?.getAttribute("data-row");
  const action = active.getAttribute("data-action");
  return row && action ? { row, action } : null;
}

/**
 * @param {Person} person
 * @returns {HTMLElement}
 */
function personRow(person) {
  const row = el("li", "person");
  row.setAttribute("data-row", `person:${person.id}`);
  if (person.self) row.setAttribute("data-self", "");
  if (person.handOrder !== null) row.setAttribute("data-hand-raised", String(person.handOrder));
  const name = el("span", "person__name");
  name.id = uniqueId("person-name");
  name.append(el("span", "person__text", person.name));
  if (person.self) name.append(" ", el("span", "person__you", STRINGS.you));
  const badges = el("span", "person__badges");
  if (person.handOrder !== null) {
    const hand = el("span", "tile__badge tile__badge--hand", HANDS.badge(person.handOrder));
    hand.setAttribute("role", "img");
    hand.setAttribute("aria-label", HANDS.badgeLabel(person.handOrder));
    badges.append(hand);
  }
  if (person.host) badges.append(el("span", "tile__badge tile__badge--host", STRINGS.host));
  if (person.mutedByHost) badges.append(el("span", "tile__badge tile__badge--muted", STRINGS.mutedByHost));
  else if (person.micOff) {
    const micOff = el("span", "person__mic-off");
    micOff.setAttribute("role", "img");
    micOff.setAttribute("aria-label", STRINGS.micOff);
    micOff.title = STRINGS.micOff;
    badges.append(micOff);
  }
  row.append(name, badges);
  if (state.amHost && !person.self) row.append(hostActions(person, name.id));
  return row;
}

/**
 * The host's actions on someone's row: the same commands as the tile menu's.
 * @param {Person} person
 * @param {string} nameId
 * @returns {HTMLElement}
 */
function hostActions(person, nameId) {
  const actions = el("span", "person__actions");
  /**
   * @param {string} action
   * @param {string} label
   * @param {(current: import("./protocol.js").MeetnowCall) => boolean} send
   * @param {string} [className]
   */
  const add = (action, label, send, className) => {
    const button = makeButton(label, className);
    button.setAttribute("data-action", action);
    button.setAttribute("aria-describedby", nameId);
    button.addEventListener("click", () => hostCommand(send));
    actions.append(button);
  };
  const id = person.id;
  if (person.handOrder !== null) add("lower-hand", STRINGS.lowerHand, (current) => current.lowerHand(id));
  add("mute", person.mutedByHost ? STRINGS.allowAudio : STRINGS.mute, (current) => current.mute(id, !person.mutedByHost));
  if (!person.host) add("make-host", STRINGS.makeHost, (current) => current.makeHost(id));
  add("remove", STRINGS.remove, (current) => current.remove(id), "button button--small button--danger");
  return actions;
}

function renderLobby() {
  const knocks = state.amHost ? [...state.roster.knocks] : [];
  view.lobby.hidden = knocks.length === 0;
  view.lobbyTitle.textContent = `${STRINGS.lobbyTitle} ${STRINGS.count(knocks.length)}`;
  view.lobbyList.replaceChildren(
    ...knocks.map(([id, knockName]) => {
      const row = el("li", "person person--knock");
      row.setAttribute("data-row", `knock:${id}`);
      const name = el("span", "person__name", knockName || STRINGS.guest);
      name.id = uniqueId("knock-row-name");
      const actions = el("span", "person__actions");
      for (const [action, label, admit] of /** @type {const} */ ([
        ["admit", STRINGS.admit, true],
        ["deny", STRINGS.deny, false],
      ])) {
        const button = makeButton(label, admit ? "button button--small button--primary" : undefined);
        button.setAttribute("data-action", action);
        button.setAttribute("aria-describedby", name.id);
        button.addEventListener("click", () => answerKnock(id, admit));
        actions.append(button);
      }
      row.append(name, actions);
      return row;
    }),
  );
}
