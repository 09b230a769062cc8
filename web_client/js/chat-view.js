// The chat panel: the "Chat" button (with its unread count), the messages since we joined (name,
// local time, text with http(s) links; all of it through textContent and createElement, never
// HTML), and the "Message" field that sends on Enter and shows the server's refusals.

import { formatNumber, t } from "./i18n.js";
import {
  COUNTER_FROM,
  MAX_CHAT_CHARACTERS,
  addMessage,
  clearChat,
  codePointLength,
  isBlank,
  isChatRefusal,
  linkSegments,
  localTime,
} from "./chat.js";
import { el, makeButton, ui, uniqueId } from "./dom.js";
import { announce, playSound, STRINGS as ANNOUNCE } from "./announce.js";
import { state } from "./state.js";

/**
 * @typedef {import("./protocol.js").ChatDetail} ChatDetail
 * @typedef {import("./protocol.js").ServerErrorDetail} ServerErrorDetail
 */

export const STRINGS = Object.freeze({
  chatButton: t("page.chat.button"),
  /** @param {number} count */
  chatButtonUnread: (count) => t("page.chat.button_unread", { count }),
  title: t("page.chat.title"),
  close: t("page.chat.close"),
  closeLabel: t("page.chat.close_label"),
  empty: t("page.chat.empty"),
  field: t("page.chat.field"),
  send: t("page.chat.send"),
  placeholder: t("page.chat.placeholder"),
  /** @param {number} used */
  counter: (used) => t("page.chat.counter", { used: formatNumber(used), max: formatNumber(MAX_CHAT_CHARACTERS) }),
  notConnected: t("page.chat.not_connected"),
});

const view = buildView();

function buildView() {
  const button = makeButton(STRINGS.chatButton, "button control control--chat");
  button.id = "chat-button";
  button.hidden = true;
  button.setAttribute("aria-expanded", "false");
  const unreadBadge = el("span", "control__count");
  unreadBadge.setAttribute("aria-hidden", "true");
  unreadBadge.hidden = true;
  button.append(unreadBadge);

  const panel = el("aside", "side-panel side-panel--chat");
  panel.id = "chat-panel";
  panel.hidden = true;
  button.setAttribute("aria-controls", panel.id);
  const header = el("div", "side-panel__header");
  const title = el("h2", "side-panel__title", STRINGS.title);
  title.id = uniqueId("chat-title");
  panel.setAttribute("aria-labelledby", title.id);
  const close = makeButton(STRINGS.close, "button button--small button--quiet");
  close.setAttribute("aria-label", STRINGS.closeLabel);
  header.append(title, close);

  const log = el("ol", "chat-log");
  log.setAttribute("aria-labelledby", title.id);
  log.tabIndex = 0; // scrollable by keyboard
  const empty = el("p", "hint chat-empty", STRINGS.empty);

  const form = /** @type {HTMLFormElement} */ (el("form", "chat-form"));
  const fieldId = uniqueId("chat-message");
  const label = /** @type {HTMLLabelElement} */ (el("label", "field__label", STRINGS.field));
  label.htmlFor = fieldId;
  const field = /** @type {HTMLTextAreaElement} */ (el("textarea", "field__input chat-form__field"));
  field.id = fieldId;
  field.rows = 2;
  field.placeholder = STRINGS.placeholder;
  field.setAttribute("autocomplete", "off");
  const counter = el("span", "chat-form__counter");
  counter.id = uniqueId("chat-counter");
  counter.hidden = true;
  const error = el("p", "chat-form__error");
  error.id = uniqueId("chat-error");
  error.setAttribute("role", "status");
  field.setAttribute("aria-describedby", `${error.id} ${counter.id}`);
  const send = makeButton(STRINGS.send, "button button--small button--primary");
  send.type = "submit";
  const row = el("div", "chat-form__row");
  row.append(counter, send);
  form.append(label, field, error, row);
  panel.append(header, empty, log, form);
  return { button, unreadBadge, panel, close, log, empty, form, field, counter, error };
}

/** @returns {HTMLElement} the container both side panels live in (made once, next to the grid) */
export function sidePanels() {
  let container = document.getElementById("side-panels");
  if (!container) {
    container = el("div", "side-panels");
    container.id = "side-panels";
    ui.grid.after(container);
  }
  return container;
}

/** Put the button in the control bar and the panel beside the grid; wire both. */
export function wireChat() {
  ui.copyButton.before(view.button);
  sidePanels().append(view.panel);
  view.button.addEventListener("click", () => setChatOpen(!state.chat.open));
  view.close.addEventListener("click", () => setChatOpen(false));
  view.panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") setChatOpen(false);
  });
  view.form.addEventListener("submit", (event) => {
    event.preventDefault();
    sendFromField();
  });
  view.field.addEventListener("keydown", (event) => {
    // Enter sends, Shift+Enter is a new line; never in the middle of an input method's composition.
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    event.preventDefault();
    sendFromField();
  });
  view.field.addEventListener("input", renderCounter);
  renderButton();
}

/** @param {boolean} open */
export function setChatOpen(open) {
  state.chat.open = open;
  view.panel.hidden = !open;
  view.button.setAttribute("aria-expanded", String(open));
  updatePanelsLayout();
  if (open) {
    state.chat.unread = 0;
    view.field.focus();
    scrollToEnd();
  } else if (view.panel.contains(document.activeElement) || document.activeElement === document.body) {
    view.button.focus();
  }
  renderButton();
}

/** Whether either side panel is open: the call's layout gives them a column (meetnow.css). */
export function updatePanelsLayout() {
  const container = sidePanels();
  const open = [...container.children].some((child) => child instanceof HTMLElement && !child.hidden);
  ui.call.toggleAttribute("data-panels", open);
}

function sendFromField() {
  const text = view.field.value;
  // A blank message would only be refused; one already on its way is not sent twice.
  if (isBlank(text) || state.chat.pending.includes(text)) return;
  if (!state.call || !state.call.sendChat(text)) {
    showError(STRINGS.notConnected);
    return;
  }
  state.chat.pending.push(text);
}

/** @param {string} message */
function showError(message) {
  view.error.textContent = message;
}

function renderCounter() {
  const used = codePointLength(view.field.value);
  view.counter.hidden = used < COUNTER_FROM;
  view.counter.textContent = STRINGS.counter(used);
  view.counter.classList.toggle("chat-form__counter--over", used > MAX_CHAT_CHARACTERS);
}

function renderButton() {
  const unread = state.chat.unread;
  view.unreadBadge.hidden = unread === 0;
  view.unreadBadge.textContent = String(unread);
  view.button.setAttribute("aria-label", unread > 0 ? STRINGS.chatButtonUnread(unread) : STRINGS.chatButton);
}

/** The Chat button exists only in the call (never in the lobby). @param {boolean} inCall */
export function showChatButton(inCall) {
  view.button.hidden = !inCall;
  if (!inCall && state.chat.open) setChatOpen(false);
}

/**
 * A message from the server (ours is the echo that confirms it).
 * @param {ChatDetail} message
 */
export function showChatMessage(message) {
  const ours = message.participantId === state.call?.participantId;
  const atEnd = view.log.scrollHeight - view.log.scrollTop - view.log.clientHeight < 40;
  addMessage(state.chat, message, ours);
  view.log.append(messageItem(message, ours));
  while (view.log.childElementCount > state.chat.messages.length) view.log.firstElementChild?.remove();
  view.empty.hidden = true;
  if (ours) {
    if (view.field.value === message.text) {
      view.field.value = "";
      renderCounter();
    }
    showError("");
  } else {
    announce(ANNOUNCE.newMessage(message.name));
    playSound("chat");
  }
  if (ours || atEnd) scrollToEnd();
  renderButton();
}

/**
 * @param {ChatDetail} message
 * @param {boolean} ours
 * @returns {HTMLElement}
 */
function messageItem(message, ours) {
  const item = el("li", ours ? "chat-message chat-message--ours" : "chat-message");
  const meta = el("p", "chat-message__meta");
  const name = el("span", "chat-message__name", message.name);
  const time = /** @type {HTMLTimeElement} */ (el("time", "chat-message__time", localTime(message.sentAt)));
  time.dateTime = new Date(message.sentAt).toISOString();
  meta.append(name, " ", time);
  const body = el("p", "chat-message__text");
  for (const segment of linkSegments(message.text)) {
    if (segment.kind === "text") {
      body.append(document.createTextNode(segment.text));
    } else {
      const link = /** @type {HTMLAnchorElement} */ (el("a", "chat-message__link", segment.text));
      link.href = segment.href;
      link.rel = "noopener noreferrer";
      link.target = "_blank";
      body.append(link);
    }
  }
  item.append(meta, body);
  return item;
}

function scrollToEnd() {
  view.log.scrollTop = view.log.scrollHeight;
}

/**
 * The server refused a chat message of ours: say why near the field, and keep the text there.
 * @param {ServerErrorDetail} detail
 * @returns {boolean} whether it was about chat (else the caller shows it as usual)
 */
export function chatRefused(detail) {
  if (!isChatRefusal(state.chat, detail.code)) return false;
  state.chat.pending.shift();
  showError(detail.message);
  return true;
}

/** Joined (again): answers to messages sent on the old connection will never come. */
export function forgetPendingChat() {
  state.chat.pending.length = 0;
}

/** The call is over: nothing said in it stays on the page. */
export function resetChat() {
  clearChat(state.chat);
  view.log.replaceChildren();
  view.empty.hidden = false;
  view.field.value = "";
  showError("");
  renderCounter();
  showChatButton(false);
  renderButton();
}
