// One participant per session across this browser's tabs. A duplicated tab copies sessionStorage, so
// it would take over the other tab's participant: ask the other tabs whether this session is in use
// before joining, and answer their questions while in a call.

import { newSessionId } from "./identity.js";
import { state } from "./state.js";

const channel = typeof BroadcastChannel === "function" ? new BroadcastChannel("meetnow.sessions") : null;
/** How long the other tabs have to answer. */
const PROBE_WAIT_MS = 150;

/** Answer the other tabs' probes, and hear their answers to ours. */
export function listenToOtherTabs() {
  if (!channel) return;
  channel.onmessage = (event) => {
    const data = event.data;
    if (!data || typeof data !== "object" || data.session !== state.sessionId) return;
    if (data.type === "probe" && state.inCall) channel.postMessage({ type: "taken", session: state.sessionId });
    if (data.type === "taken") state.sessionTaken = true;
  };
}

/** Take a fresh session id if another tab answers that it uses ours. */
export async function ensureOwnSession() {
  if (!channel) return;
  state.sessionTaken = false;
  channel.postMessage({ type: "probe", session: state.sessionId });
  await new Promise((resolve) => setTimeout(resolve, PROBE_WAIT_MS));
  if (state.sessionTaken) state.sessionId = newSessionId(state.roomId);
}
