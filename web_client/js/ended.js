// The "not in the meeting" screen: why the call ended, in the user's words, and whether trying
// again can help.

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
      return "The host has locked this meeting.";
    case "removed":
      return "The host removed you from this meeting.";
    case "denied":
      return "The host did not let you in.";
    case "room_ended":
      // The server says which: the meeting ended, or its link's --for time is up (the meeting
      // may go on for those already in it). Its words, shown as text.
      return message || "This meeting has ended.";
    case "room_not_found":
      return "This meeting link is not valid or has expired.";
    case "room_full":
      return "This meeting is full.";
    case "replaced":
      return "You joined this meeting from another tab or window.";
    case "webrtc_unsupported":
      return "This browser cannot make video calls.";
    case "room_closed":
      if (reason === "expired") return "This meeting has expired.";
      if (reason === "server_shutdown") return "The meeting server shut down.";
      if (reason === "ended") {
        return state.endedByMe ? "You ended the meeting for everyone." : "The host ended the meeting for everyone.";
      }
      return "This meeting has ended.";
    default:
      return message || "The connection to the meeting was lost.";
  }
}

/** @param {string} code */
function endedTitle(code) {
  switch (code) {
    case "room_closed":
      return "The meeting is over";
    case "room_ended":
      return "You can't join this meeting";
    case "removed":
      return "You were removed";
    case "denied":
      return "You were not let in";
    case "locked":
      return "This meeting is locked";
    default:
      return "You are not in the meeting";
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
