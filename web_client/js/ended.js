// The "not in the meeting" screen: why the call ended, in the user's words, and whether trying
// again can help.

import { t } from "./i18n.js";
import { ui, showScreen } from "./dom.js";
import { forgetStoredHostToken } from "./identity.js";
import { state } from "./state.js";

/** Worth a "Try again" button (a locked meeting may be unlocked; removed/denied/ended never help). */
const RETRYABLE = new Set(["negotiation_failed", "server_error", "replaced", "room_full", "invalid_message", "locked", "no_ports"]);
/** The room is gone for good: forget its host token. */
const ROOM_GONE = new Set(["room_closed", "room_ended", "room_not_found"]);

/** @param {string} code @param {string} message @param {string | null} reason */
function endedText(code, message, reason) {
  switch (code) {
    case "locked":
      return t("page.ended.locked");
    case "removed":
      return t("page.ended.removed");
    case "denied":
      return t("page.ended.denied");
    case "room_ended":
      // The server says which: the meeting ended, or its link's --for time is up (the meeting
      // may go on for those already in it). Its words, shown as text.
      return message || t("page.ended.ended");
    case "room_not_found":
      return t("page.ended.not_found");
    case "room_full":
      return t("page.ended.full");
    case "replaced":
      return t("page.ended.replaced");
    case "webrtc_unsupported":
      return t("page.ended.unsupported");
    case "room_closed":
      if (reason === "expired") return t("page.ended.expired");
      if (reason === "server_shutdown") return t("page.ended.server_shutdown");
      if (reason === "ended") {
        return state.endedByMe ? t("page.ended.ended_by_me") : t("page.ended.ended_by_host");
      }
      return t("page.ended.ended");
    default:
      return message || t("page.ended.lost");
  }
}

/** @param {string} code */
function endedTitle(code) {
  switch (code) {
    case "room_closed":
      return t("page.ended.title_over");
    case "room_ended":
      return t("page.ended.title_cannot_join");
    case "removed":
      return t("page.ended.title_removed");
    case "denied":
      return t("page.ended.title_denied");
    case "locked":
      return t("page.ended.title_locked");
    default:
      return t("page.ended.title");
  }
}

/** @param {import("./protocol.js").EndedDetail} detail */
export function showEnded(detail) {
  if (ROOM_GONE.has(detail.code)) {
    // Its host token is of no use any more.
    state.hostToken = null;
    forgetStoredHostToken(state.roomId);
  }
  ui.endedTitle.textContent = endedTitle(detail.code);
  ui.endedText.textContent = endedText(detail.code, detail.message, detail.reason);
  ui.retryButton.hidden = !RETRYABLE.has(detail.code);
  showScreen(ui.ended);
}
