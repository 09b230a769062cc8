// Announcements for screen readers (a visually hidden, polite live region of its own, so that joins,
// leaves, hands and chat messages are heard without filling the visible status area) and, when the
// user turns "Sounds" on, a short tone made with WebAudio (no audio file, nothing fetched).

import { t } from "./i18n.js";
import { makeButton, ui } from "./dom.js";

export const STRINGS = Object.freeze({
  soundsButton: t("page.announce.sounds"),
  soundsOnTitle: t("page.announce.sounds_on_title"),
  soundsOffTitle: t("page.announce.sounds_off_title"),
  /** @param {string} name */
  joined: (name) => t("page.announce.joined", { name }),
  /** @param {string} name */
  left: (name) => t("page.announce.left", { name }),
  /** @param {string} name */
  handRaised: (name) => t("page.announce.hand_raised", { name }),
  /** @param {string} name */
  newMessage: (name) => t("page.announce.new_message", { name }),
});

/** @typedef {"join" | "leave" | "hand" | "chat" | "knock"} SoundKind */

const SOUNDS_KEY = "meetnow.sounds";
/** Each announcement stays this long, then goes (a reader has queued it by then). */
const ANNOUNCEMENT_MS = 8000;
/** Tones, in Hz: a rising pair for arrivals, falling for departures. */
const TONES = Object.freeze({
  join: [660, 880],
  leave: [660, 440],
  hand: [880, 880],
  chat: [990],
  knock: [520, 700],
});
const TONE_SECONDS = 0.09;

/** The live region: created once, at load, so that it exists before anything is said into it. */
const region = (() => {
  const element = document.createElement("div");
  element.id = "announcements";
  element.className = "visually-hidden";
  element.setAttribute("aria-live", "polite");
  element.setAttribute("aria-relevant", "additions");
  document.body.append(element);
  return element;
})();

const soundsButton = makeButton(STRINGS.soundsButton, "button control control--sounds");

/** One AudioContext, made on the first click that turns sounds on (browsers want a gesture). */
/** @type {{context: AudioContext | null}} */
const audio = { context: null };

/**
 * Say something to screen readers, politely (after what they are reading).
 * @param {string} text
 */
export function announce(text) {
  const line = document.createElement("p");
  line.textContent = text;
  region.append(line);
  setTimeout(() => line.remove(), ANNOUNCEMENT_MS);
}

/** @returns {boolean} */
export function soundsOn() {
  try {
    return localStorage.getItem(SOUNDS_KEY) === "on";
  } catch {
    return false; // storage blocked: sounds stay off
  }
}

/**
 * A short tone for this kind of event, if the user turned sounds on.
 * @param {SoundKind} kind
 */
export function playSound(kind) {
  if (!soundsOn()) return;
  const context = audioContext();
  if (!context) return;
  let at = context.currentTime;
  for (const frequency of TONES[kind]) {
    const oscillator = context.createOscillator();
    const gain = context.createGain();
    oscillator.type = "sine";
    oscillator.frequency.value = frequency;
    // A soft attack and release: no click at either end.
    gain.gain.setValueAtTime(0, at);
    gain.gain.linearRampToValueAtTime(0.08, at + 0.01);
    gain.gain.linearRampToValueAtTime(0, at + TONE_SECONDS);
    oscillator.connect(gain).connect(context.destination);
    oscillator.start(at);
    oscillator.stop(at + TONE_SECONDS);
    at += TONE_SECONDS + 0.03;
  }
}

/** @returns {AudioContext | null} */
function audioContext() {
  if (audio.context) return audio.context;
  if (typeof AudioContext !== "function") return null;
  audio.context = new AudioContext();
  return audio.context;
}

function renderSoundsButton() {
  const on = soundsOn();
  soundsButton.setAttribute("aria-pressed", String(on));
  soundsButton.title = on ? STRINGS.soundsOnTitle : STRINGS.soundsOffTitle;
}

/** The "Sounds" toggle in the control bar: off by default, remembered in this browser. */
export function wireSounds() {
  ui.copyButton.before(soundsButton);
  renderSoundsButton();
  soundsButton.addEventListener("click", () => {
    const on = !soundsOn();
    try {
      localStorage.setItem(SOUNDS_KEY, on ? "on" : "off");
    } catch {
      // Storage blocked: sounds stay off (soundsOn reads the storage).
    }
    if (on) void audioContext()?.resume();
    renderSoundsButton();
    if (on) playSound("chat");
  });
}
