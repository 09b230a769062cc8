// The room page's elements and small helpers to build more. Participant names are untrusted: they
// only ever go through textContent (or attribute values set with setAttribute).

import { state } from "./state.js";

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @param {{new (): T, prototype: T}} type
 * @returns {T}
 */
function byId(id, type) {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`meetnow: #${id} is missing from the page`);
  return element;
}

export const ui = {
  topic: byId("room-topic", HTMLElement),
  lockedBadge: byId("locked-badge", HTMLElement),
  notices: byId("notices", HTMLElement),
  prejoin: byId("prejoin", HTMLElement),
  preview: byId("preview", HTMLVideoElement),
  previewOff: byId("preview-off", HTMLElement),
  prejoinMic: byId("prejoin-mic", HTMLButtonElement),
  prejoinCam: byId("prejoin-cam", HTMLButtonElement),
  joinForm: byId("join-form", HTMLFormElement),
  nameInput: byId("name-input", HTMLInputElement),
  joinButton: byId("join-button", HTMLButtonElement),
  hostHint: byId("host-hint", HTMLElement),
  waiting: byId("waiting", HTMLElement),
  waitingTopic: byId("waiting-topic", HTMLElement),
  waitingPreview: byId("waiting-preview", HTMLVideoElement),
  waitingLeaveButton: byId("waiting-leave-button", HTMLButtonElement),
  call: byId("call", HTMLElement),
  hostBar: byId("host-bar", HTMLElement),
  lockButton: byId("lock-button", HTMLButtonElement),
  lobbyButton: byId("lobby-button", HTMLButtonElement),
  endButton: byId("end-button", HTMLButtonElement),
  endConfirm: byId("end-confirm", HTMLElement),
  endConfirmButton: byId("end-confirm-button", HTMLButtonElement),
  endCancelButton: byId("end-cancel-button", HTMLButtonElement),
  lobbyPanel: byId("lobby-panel", HTMLElement),
  lobbyCount: byId("lobby-count", HTMLElement),
  lobbyList: byId("lobby-list", HTMLElement),
  grid: byId("grid", HTMLElement),
  micButton: byId("mic-button", HTMLButtonElement),
  camButton: byId("cam-button", HTMLButtonElement),
  copyButton: byId("copy-button", HTMLButtonElement),
  copyFallback: byId("copy-fallback", HTMLInputElement),
  leaveButton: byId("leave-button", HTMLButtonElement),
  left: byId("left", HTMLElement),
  rejoinButton: byId("rejoin-button", HTMLButtonElement),
  ended: byId("ended", HTMLElement),
  endedTitle: byId("ended-title", HTMLElement),
  endedText: byId("ended-text", HTMLElement),
  retryButton: byId("retry-button", HTMLButtonElement),
};

/**
 * Show one screen and hide the others. A screen that replaces another takes the focus to its
 * heading: otherwise the focus falls to <body> with the hidden button, and a screen reader says
 * nothing of the new screen. The first screen at load and a screen shown again (a reconnect) keep
 * the focus where it is.
 * @param {HTMLElement} screen
 */
export function showScreen(screen) {
  const previous = document.body.dataset.view;
  for (const element of [ui.prejoin, ui.waiting, ui.call, ui.left, ui.ended]) element.hidden = element !== screen;
  document.body.dataset.view = screen.id;
  if (previous && previous !== screen.id) focusHeading(screen);
}

/**
 * Give the focus to a screen's heading (its h1; the call's is visually hidden), which a script may
 * focus but Tab skips.
 * @param {HTMLElement} screen
 */
export function focusHeading(screen) {
  const heading = screen.querySelector("h1");
  if (!(heading instanceof HTMLElement)) return;
  if (!heading.hasAttribute("tabindex")) heading.tabIndex = -1;
  heading.focus({ preventScroll: true });
}

/** @param {string | null | undefined} topic */
export function showTopic(topic) {
  const text = topic ? topic : "";
  ui.topic.textContent = text;
  document.title = text ? `${text} · meetnow` : "meetnow";
}

/**
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElement}
 */
export function el(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}

/**
 * @param {string} text
 * @param {string} [className]
 * @returns {HTMLButtonElement}
 */
export function makeButton(text, className = "button button--small") {
  const button = document.createElement("button");
  button.type = "button";
  button.className = className;
  button.textContent = text;
  return button;
}

/**
 * A new element id for this page (for aria-describedby and aria-controls).
 * @param {string} prefix
 * @returns {string}
 */
export function uniqueId(prefix) {
  state.nextUid += 1;
  return `${prefix}-${state.nextUid}`;
}
