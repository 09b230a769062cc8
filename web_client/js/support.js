// Whether this browser can make a video call at all, asked as the page loads: a browser without
// WebRTC learns it on the pre-join screen, before it is asked for the camera or types a name
// (WebKitGTK's MiniBrowser, for one, used to reach "This browser cannot make video calls" only
// after both).

import { t } from "./i18n.js";

/**
 * @typedef {object} CallSupport
 * @property {boolean} supported
 * @property {string[]} missing the web platform features this browser lacks, by name
 */


/**
 * What of WebRTC this browser lacks. A page served over plain http (not localhost) hides
 * `navigator.mediaDevices` by design: that browser can still call (watch and listen), and the media
 * notice says how to get the camera, so getUserMedia counts as missing only in a secure context.
 * @param {typeof globalThis} [scope] the window to ask (tests and other frames)
 * @returns {CallSupport}
 */
export function callSupport(scope = globalThis) {
  /** @type {string[]} */
  const missing = [];
  if (typeof scope.RTCPeerConnection !== "function") missing.push("RTCPeerConnection");
  const devices = scope.navigator?.mediaDevices;
  if (scope.isSecureContext && typeof devices?.getUserMedia !== "function") missing.push("getUserMedia");
  if (typeof scope.WebSocket !== "function") missing.push("WebSocket");
  return { supported: missing.length === 0, missing };
}

/**
 * The pre-join screen's words for a browser that cannot call.
 * @returns {{title: string, advice: string}}
 */
export function unsupportedText() {
  return {
    title: t("page.support.title"),
    // Where a browser that cannot call can go instead: each one named makes meetnow's calls.
    advice: t("page.support.advice"),
  };
}

/**
 * Say on the pre-join screen that this browser cannot call, and offer no Join and no devices.
 * @param {CallSupport} support
 */
export function showUnsupportedBrowser(support) {
  const box = document.getElementById("unsupported");
  const join = document.getElementById("join-button");
  const devices = document.getElementById("prejoin-devices");
  const { title, advice } = unsupportedText();
  if (box) {
    const heading = document.createElement("strong");
    heading.textContent = `${title}.`;
    box.replaceChildren(heading, ` ${advice}`);
    box.dataset.missing = support.missing.join(" ");
    box.hidden = false;
  }
  if (join instanceof HTMLButtonElement) {
    join.disabled = true;
    if (box) join.setAttribute("aria-describedby", "unsupported");
  }
  if (devices) devices.hidden = true;
}
