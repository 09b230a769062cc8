// Choosing the camera, microphone and speaker: the selects on the pre-join screen and in the call,
// switching without renegotiation (RTCRtpSender.replaceTrack: the others see a frame or two of
// gap at most), falling back when the device in use goes away, and the choice remembered on this
// browser. Device labels come from the system: they only ever go through textContent.

import { renderControls, renderPrejoinToggles } from "./controls.js";
import {
  VIDEO_CONSTRAINTS,
  canChooseSpeaker,
  deviceNoun,
  listDevices,
  openErrorText,
  saveDevice,
  savedDevice,
} from "./device-store.js";
import { el, ui, uniqueId } from "./dom.js";
import { t } from "./i18n.js";
import { clearNotice, showNotice } from "./notices.js";
import { playVideo } from "./playback.js";
import { state } from "./state.js";

/**
 * @typedef {import("./device-store.js").InputKind} InputKind
 * @typedef {import("./device-store.js").DeviceKind} DeviceKind
 * @typedef {import("./device-store.js").DeviceEntry} DeviceEntry
 */

/** The selects' labels (page.devices.label.*): a public contract (tests and users find the
 * selects by them). A device without a label (no permission yet) is listed as "Camera 2". */

// ------------------------------------------------------------------ the local tracks

/**
 * @param {InputKind} kind
 * @returns {MediaStreamTrack | null} the live track of this kind we send (or would send)
 */
function currentTrack(kind) {
  const tracks = kind === "videoinput" ? state.localStream.getVideoTracks() : state.localStream.getAudioTracks();
  return tracks.find((track) => track.readyState === "live") ?? null;
}

/** @param {MediaStreamTrack} track */
function trackDeviceId(track) {
  return track.getSettings().deviceId ?? "";
}

/**
 * Open one device alone.
 * @param {InputKind} kind
 * @param {string} deviceId
 * @returns {Promise<MediaStreamTrack>}
 */
async function openDevice(kind, deviceId) {
  const exact = { deviceId: { exact: deviceId } };
  const stream = await navigator.mediaDevices.getUserMedia(
    kind === "videoinput" ? { video: { ...VIDEO_CONSTRAINTS, ...exact } } : { audio: exact },
  );
  const [track] = kind === "videoinput" ? stream.getVideoTracks() : stream.getAudioTracks();
  for (const other of stream.getTracks()) if (other !== track) other.stop();
  if (!track) throw new DOMException("no track", "NotFoundError");
  return track;
}

/** Show the local stream again in every local preview (a track of it changed). */
function refreshLocalVideos() {
  const videos = [ui.preview, ui.waitingPreview, state.localTile?.video];
  for (const video of videos) {
    if (!video || !video.srcObject) continue;
    video.srcObject = null;
    video.srcObject = state.localStream;
    playVideo(video);
  }
  if (ui.preview.isConnected && !ui.preview.srcObject && state.localStream.getVideoTracks().length > 0) {
    ui.preview.srcObject = state.localStream;
    playVideo(ui.preview);
  }
}

/**
 * Send `fresh` wherever `old` was sent (no renegotiation), and hold it in the local stream.
 * @param {MediaStreamTrack | null} old
 * @param {MediaStreamTrack | null} fresh
 */
async function swapTrack(old, fresh) {
  const stream = state.localStream;
  // The stream first: an offer answered meanwhile picks the new track from it.
  if (old) stream.removeTrack(old);
  if (fresh) stream.addTrack(fresh);
  const pc = state.call?.peerConnection ?? null;
  try {
    if (pc && old) for (const sender of pc.getSenders()) if (sender.track === old) await sender.replaceTrack(fresh);
  } catch (error) {
    if (fresh) stream.removeTrack(fresh);
    if (old) stream.addTrack(old);
    throw error;
  }
  if (old) old.stop();
  if (fresh) watchTrack(fresh);
  refreshLocalVideos();
  renderPrejoinToggles();
  renderControls();
}

/**
 * Switch one input to a device; on failure keep the current track and say why.
 * @param {InputKind} kind
 * @param {string} deviceId
 * @param {string} label for the notice
 * @returns {Promise<boolean>} whether the device is in use now
 */
async function switchInput(kind, deviceId, label) {
  const old = currentTrack(kind);
  if (old && trackDeviceId(old) === deviceId) return true;
  if (state.inCall && !old) {
    // The call announced no such track at join: the relay has no place to forward it.
    showNotice(`device-${kind}`, t(`page.devices.rejoin_to_start.${kind}`), { kind: "warn", timeoutMs: 8000 });
    return false;
  }
  const stream = state.localStream;
  /** @type {MediaStreamTrack} */
  let fresh;
  try {
    fresh = await openDevice(kind, deviceId);
  } catch (error) {
    showNotice(`device-${kind}`, openErrorText(kind, label, error), { kind: "error", dismissible: true });
    return false;
  }
  if (state.localStream !== stream) {
    fresh.stop(); // the call ended meanwhile: the devices were released
    return false;
  }
  // Muted stays muted, camera off stays off.
  fresh.enabled = old ? old.enabled : kind === "videoinput" ? state.wantVideo : state.wantAudio;
  try {
    await swapTrack(old, fresh);
  } catch (error) {
    fresh.stop();
    showNotice(`device-${kind}`, openErrorText(kind, label, error), { kind: "error", dismissible: true });
    return false;
  }
  return true;
}

/**
 * Devices are switched one at a time, in the order asked.
 * @param {() => Promise<unknown>} work
 */
function queueDeviceWork(work) {
  const next = state.deviceWork.then(work).catch((error) => console.error("meetnow: device switch failed", error));
  state.deviceWork = next.then(() => renderDeviceLists());
}

/**
 * The user picked a device in a select.
 * @param {DeviceKind} kind
 * @param {string} deviceId
 * @param {string} label
 */
function chooseDevice(kind, deviceId, label) {
  clearNotice(`device-${kind}`);
  if (kind === "audiooutput") {
    queueDeviceWork(async () => {
      if (await applySpeaker(deviceId, label)) saveDevice(kind, { deviceId, label });
    });
    return;
  }
  queueDeviceWork(async () => {
    if (await switchInput(kind, deviceId, label)) saveDevice(kind, { deviceId, label });
  });
}

// ------------------------------------------------------------------ unplugged devices

/**
 * The device of `gone` went away: use another of its kind, or none, and say so.
 * @param {InputKind} kind
 * @param {MediaStreamTrack} gone
 */
async function fallBack(kind, gone) {
  if (!state.localStream.getTracks().includes(gone)) return; // already replaced
  const goneId = trackDeviceId(gone);
  const goneLabel = gone.label || deviceNoun(kind);
  const candidates = (await listDevices()).filter((device) => device.kind === kind && device.deviceId !== goneId);
  for (const candidate of candidates) {
    /** @type {MediaStreamTrack} */
    let fresh;
    try {
      fresh = await openDevice(kind, candidate.deviceId);
    } catch {
      continue;
    }
    fresh.enabled = gone.enabled;
    try {
      await swapTrack(gone, fresh);
    } catch {
      fresh.stop();
      continue;
    }
    const now = fresh.label || candidate.label || deviceNoun(kind);
    showNotice(`device-${kind}`, t(`page.devices.switched.${kind}`, { gone: goneLabel, now }), {
      kind: "warn",
      dismissible: true,
    });
    return;
  }
  await swapTrack(gone, null);
  if (kind === "videoinput") state.call?.setVideoEnabled(false);
  else state.call?.setAudioEnabled(false);
  renderControls();
  showNotice(`device-${kind}`, t(`page.devices.none_left.${kind}`, { gone: goneLabel }), {
    kind: "warn",
    dismissible: true,
  });
}

/**
 * Fall back when this track's device ends (unplugged, or taken by the system).
 * @param {MediaStreamTrack} track
 */
function watchTrack(track) {
  const kind = track.kind === "video" ? "videoinput" : "audioinput";
  // A property, not a listener: watching the same track twice stays one watch.
  track.onended = () => queueDeviceWork(() => fallBack(kind, track));
}

/** The device list changed: a device in use that is gone is replaced, and the selects updated. */
async function onDeviceChange() {
  const present = new Set((await listDevices()).map((device) => device.deviceId));
  for (const kind of /** @type {InputKind[]} */ (["videoinput", "audioinput"])) {
    const track = currentTrack(kind);
    const deviceId = track ? trackDeviceId(track) : "";
    if (track && deviceId && !present.has(deviceId)) queueDeviceWork(() => fallBack(kind, track));
  }
  const sink = state.speakerId;
  if (sink && !present.has(sink)) {
    queueDeviceWork(async () => {
      await applySpeaker("", "");
      showNotice("device-audiooutput", t("page.devices.speaker_gone"), {
        kind: "warn",
        dismissible: true,
      });
    });
  }
  queueDeviceWork(async () => undefined); // re-renders the lists once the above is done
}

// ------------------------------------------------------------------ speaker

/**
 * Send the call's sound (the remote tiles' <video>s) to this output ("" = the default).
 * @param {string} deviceId
 * @param {string} label
 * @returns {Promise<boolean>}
 */
async function applySpeaker(deviceId, label) {
  if (!canChooseSpeaker()) return false;
  try {
    await Promise.all(Array.from(ui.grid.querySelectorAll("video"), (video) => video.setSinkId(deviceId)));
  } catch (error) {
    showNotice("device-audiooutput", openErrorText("audiooutput", label, error), {
      kind: "error",
      dismissible: true,
    });
    return false;
  }
  state.speakerId = deviceId;
  return true;
}

/** The remembered speaker, once the devices are allowed (before, the browser lists no ids). */
async function restoreSpeaker() {
  const saved = savedDevice("audiooutput");
  if (!saved || !canChooseSpeaker() || state.speakerId === saved.deviceId) return;
  const present = (await listDevices()).some((device) => device.kind === "audiooutput" && device.deviceId === saved.deviceId);
  if (present) await applySpeaker(saved.deviceId, saved.label);
}

/** The local stream was acquired (media.js): watch its devices, list them, restore the speaker. */
export function onLocalMediaReady() {
  for (const track of state.localStream.getTracks()) watchTrack(track);
  queueDeviceWork(restoreSpeaker);
}

/** New tiles play through the chosen speaker too. */
function followSpeakerOnNewTiles() {
  new MutationObserver((records) => {
    if (!state.speakerId) return;
    for (const record of records) {
      for (const node of record.addedNodes) {
        if (!(node instanceof HTMLElement)) continue;
        const videos = node instanceof HTMLVideoElement ? [node] : Array.from(node.querySelectorAll("video"));
        for (const video of videos) video.setSinkId(state.speakerId).catch(() => undefined);
      }
    }
  }).observe(ui.grid, { childList: true, subtree: true });
}

// ------------------------------------------------------------------ the selects

/**
 * @param {HTMLElement} container
 * @param {DeviceKind} kind
 */
function addSelect(container, kind) {
  const field = el("div", "devices__field");
  const select = document.createElement("select");
  select.id = uniqueId(`device-${kind}`);
  select.className = "field__input devices__select";
  select.dataset.deviceKind = kind;
  const label = /** @type {HTMLLabelElement} */ (el("label", "field__label", t(`page.devices.label.${kind}`)));
  label.htmlFor = select.id;
  select.addEventListener("change", () => {
    const option = select.selectedOptions[0];
    chooseDevice(kind, select.value, option ? option.textContent ?? "" : "");
  });
  field.append(label, select);
  container.append(field);
}

/**
 * Fill one select: the devices of its kind, the one in use selected.
 * @param {HTMLSelectElement} select
 * @param {DeviceEntry[]} devices
 */
function fillSelect(select, devices) {
  const kind = /** @type {DeviceKind} */ (select.dataset.deviceKind);
  const own = devices.filter((device) => device.kind === kind);
  const options = own.map((device, index) => {
    const option = document.createElement("option");
    option.value = device.deviceId;
    option.textContent = device.label || t(`page.devices.unnamed.${kind}`, { n: index + 1 });
    return option;
  });
  select.replaceChildren(...options);
  if (kind === "audiooutput") {
    select.value = own.some((device) => device.deviceId === state.speakerId) ? state.speakerId : own[0]?.deviceId ?? "";
    select.disabled = own.length === 0;
    return;
  }
  const track = currentTrack(kind);
  if (track) select.value = trackDeviceId(track);
  // In the call, a kind we joined without has no place at the relay until we rejoin.
  select.disabled = own.length === 0 || (state.inCall && !track);
  select.title = select.disabled && own.length > 0 ? t(`page.devices.rejoin_to_use.${kind}`) : "";
}

/** Refresh every device select from the browser's current list. */
export async function renderDeviceLists() {
  const selects = Array.from(document.querySelectorAll("select[data-device-kind]"));
  if (selects.length === 0) return;
  const devices = await listDevices();
  for (const select of selects) if (select instanceof HTMLSelectElement) fillSelect(select, devices);
}

/** Put the selects on the pre-join screen and in the call's devices menu, and follow device changes. */
export function wireDevices() {
  /** @type {DeviceKind[]} */
  const kinds = ["videoinput", "audioinput"];
  if (canChooseSpeaker()) kinds.push("audiooutput");
  for (const id of ["prejoin-devices", "call-devices"]) {
    const container = document.getElementById(id);
    if (container) for (const kind of kinds) addSelect(container, kind);
  }
  // Opening the call's menu lists the devices as they are now; a click elsewhere or Escape
  // closes it, as the tiles' menus.
  const menu = document.getElementById("devices-menu");
  if (menu instanceof HTMLDetailsElement) {
    menu.addEventListener("toggle", () => void renderDeviceLists());
    document.addEventListener("click", (event) => {
      if (menu.open && event.target instanceof Node && !menu.contains(event.target)) menu.open = false;
    });
    menu.addEventListener("keydown", (event) => {
      if (event.key !== "Escape" || !menu.open) return;
      menu.open = false;
      menu.querySelector("summary")?.focus();
    });
  }
  followSpeakerOnNewTiles();
  navigator.mediaDevices?.addEventListener?.("devicechange", () => void onDeviceChange());
  void renderDeviceLists();
}
