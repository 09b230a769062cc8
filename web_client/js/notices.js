// The status area: short notices by key, each replacing the previous one with the same key.

import { t } from "./i18n.js";
import { el, ui } from "./dom.js";
import { state } from "./state.js";

/**
 * @typedef {object} Notice
 * @property {HTMLElement} element
 * @property {ReturnType<typeof setTimeout> | null} timer
 *
 * @typedef {object} NoticeOptions
 * @property {"info" | "warn" | "error"} [kind]
 * @property {number} [timeoutMs]
 * @property {{label: string, onClick: () => void}} [action]
 * @property {boolean} [dismissible]
 */

/**
 * Show (or replace) the notice with this key in the status area.
 * @param {string} key
 * @param {string} text
 * @param {NoticeOptions} [options]
 */
export function showNotice(key, text, options = {}) {
  clearNotice(key);
  const element = el("div", `notice notice--${options.kind ?? "info"}`);
  element.dataset.notice = key;
  element.append(el("span", "notice__text", text));
  if (options.action) {
    const { label, onClick } = options.action;
    const button = /** @type {HTMLButtonElement} */ (el("button", "button button--small", label));
    button.type = "button";
    button.addEventListener("click", onClick);
    element.append(button);
  }
  if (options.dismissible) {
    const button = /** @type {HTMLButtonElement} */ (el("button", "button button--small button--quiet", t("page.call.dismiss")));
    button.type = "button";
    button.addEventListener("click", () => clearNotice(key));
    element.append(button);
  }
  ui.notices.append(element);
  const timer = options.timeoutMs ? setTimeout(() => clearNotice(key), options.timeoutMs) : null;
  state.notices.set(key, { element, timer });
}

/** @param {string} key */
export function clearNotice(key) {
  const notice = state.notices.get(key);
  if (!notice) return;
  if (notice.timer !== null) clearTimeout(notice.timer);
  notice.element.remove();
  state.notices.delete(key);
}

/** @param {string} [except] */
export function clearNotices(except) {
  for (const key of [...state.notices.keys()]) if (key !== except) clearNotice(key);
}
