// Host commands from the page's controls (host bar, lobby, tile menus), sent through the current call.

import { t } from "./i18n.js";
import { showNotice } from "./notices.js";
import { state } from "./state.js";

/**
 * Send a host command through the current call; say so when there is no call to send it on.
 * @param {(current: import("./protocol.js").MeetnowCall) => boolean} send
 * @returns {boolean}
 */
export function hostCommand(send) {
  if (state.call && send(state.call)) return true;
  showNotice("host-command", t("page.notice.not_connected"), { kind: "warn", timeoutMs: 5000 });
  return false;
}
