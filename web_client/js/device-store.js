// What devices.js and media.js share about devices: the kinds, the browser's list, the choice
// remembered on this browser (localStorage, by deviceId), the constraints that prefer it, and the
// words for a device that cannot be opened. No page elements.

import { t } from "./i18n.js";

/**
 * @typedef {"videoinput" | "audioinput"} InputKind
 * @typedef {InputKind | "audiooutput"} DeviceKind
 * @typedef {{deviceId: string, label: string}} SavedDevice
 * @typedef {{deviceId: string, kind: string, label: string}} DeviceEntry what enumerateDevices
 *   lists (the fields we read)
 */

/** The camera we ask for: enough for a tile, and what the relay's bandwidth figures assume. */
export const VIDEO_CONSTRAINTS = { width: 640, height: 480 };

/**
 * What a notice calls each kind ("camera"), in the page's language.
 * @param {DeviceKind} kind
 */
export function deviceNoun(kind) {
  return t(`page.devices.noun.${kind}`);
}
const STORAGE_PREFIX = "meetnow.device.";

/** Whether this browser can send a <video>'s sound to a chosen output (Firefox 116+, Chromium). */
export function canChooseSpeaker() {
  return typeof HTMLMediaElement !== "undefined" && typeof HTMLMediaElement.prototype.setSinkId === "function";
}

/**
 * The device chosen last on this browser, if storage works and holds one.
 * @param {DeviceKind} kind
 * @returns {SavedDevice | null}
 */
export function savedDevice(kind) {
  try {
    const parsed = JSON.parse(localStorage.getItem(STORAGE_PREFIX + kind) ?? "null");
    if (parsed && typeof parsed.deviceId === "string" && typeof parsed.label === "string") return parsed;
  } catch {
    // Storage disabled or the entry damaged: no remembered choice.
  }
  return null;
}

/**
 * @param {DeviceKind} kind
 * @param {SavedDevice} device
 */
export function saveDevice(kind, device) {
  try {
    localStorage.setItem(STORAGE_PREFIX + kind, JSON.stringify(device));
  } catch {
    // Storage disabled or full: the choice lasts for this page only.
  }
}

/**
 * Constraints for the remembered device. `exact` when the browser lists it (Chromium ignores an
 * `ideal` microphone id); `ideal` when it lists no ids yet (no permission kept), so a device that
 * is gone falls back to the default instead of failing; nothing when it lists others only.
 * @param {InputKind} kind
 * @param {DeviceEntry[]} devices what enumerateDevices said before asking
 * @returns {MediaTrackConstraints}
 */
export function preferredConstraints(kind, devices) {
  const base = kind === "videoinput" ? { ...VIDEO_CONSTRAINTS } : {};
  const saved = savedDevice(kind);
  if (!saved) return base;
  const own = devices.filter((device) => device.kind === kind);
  if (own.some((device) => device.deviceId === saved.deviceId)) return { ...base, deviceId: { exact: saved.deviceId } };
  if (own.every((device) => !device.deviceId)) return { ...base, deviceId: { ideal: saved.deviceId } };
  return base;
}

/** @returns {Promise<DeviceEntry[]>} */
export async function listDevices() {
  try {
    return await navigator.mediaDevices.enumerateDevices();
  } catch {
    return [];
  }
}

/**
 * What to tell the user when a device cannot be opened (the previous one stays in use).
 * @param {DeviceKind} kind
 * @param {string} label
 * @param {unknown} error
 */
export function openErrorText(kind, label, error) {
  // One key per kind and failure: the article and agreement differ by device in French.
  const name = error instanceof Error || error instanceof DOMException ? error.name : "";
  if (name === "NotReadableError") return t(`page.devices.busy.${kind}`, { label });
  if (name === "NotAllowedError" || name === "SecurityError") return t(`page.devices.blocked.${kind}`, { label });
  if (name === "OverconstrainedError" || name === "NotFoundError") return t(`page.devices.not_found.${kind}`, { label });
  return t(`page.devices.failed.${kind}`, { label });
}
