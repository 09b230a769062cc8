// The network check's line on the pre-join screen: runs the check (netcheck.js) at load and on
// "Check again", and shows the result in `data-network` (checking, direct, turn, unreachable,
// unknown) with what it means in words. It never blocks joining: Join works whatever it says.

import { t } from "./i18n.js";
import { runNetworkCheck } from "./netcheck.js";

/**
 * @param {string} id
 * @returns {HTMLElement | null}
 */
function element(id) {
  return document.getElementById(id);
}

let running = false;

/**
 * Run the check once for `roomId` and show its result (a click while one runs does nothing).
 * @param {string} roomId
 * @returns {Promise<void>}
 */
export async function checkNetwork(roomId) {
  const line = element("network-check");
  const text = element("network-check-text");
  const again = element("network-check-again");
  if (!line || !text || running) return;
  running = true;
  line.dataset.network = "checking";
  text.textContent = t("page.netcheck.checking");
  if (again instanceof HTMLButtonElement) again.disabled = true;
  try {
    const { result, detail, localCandidateType } = await runNetworkCheck(roomId);
    line.dataset.network = result;
    // The path ICE chose (host, srflx, prflx, relay): what a support request asks first.
    line.dataset.candidate = localCandidateType ?? "";
    text.textContent = detail;
  } finally {
    running = false;
    if (again instanceof HTMLButtonElement) again.disabled = false;
  }
}

/**
 * Wire the "Check again" button and run the first check.
 * @param {string} roomId
 */
export function startNetworkCheck(roomId) {
  element("network-check-again")?.addEventListener("click", () => void checkNetwork(roomId));
  void checkNetwork(roomId);
}
