// meetnow landing page: "Meet now" creates a room and opens its host link (the room link plus
// `#host=TOKEN`: the room page moves the token into storage and drops the fragment at once).

import { t } from "./i18n.js";

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @param {{new (): T, prototype: T}} type
 * @returns {T}
 */
function byId(id, type) {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`meetnow: #${id} is missing from the page`);
  return element;
}

const form = byId("create-form", HTMLFormElement);
const topicInput = byId("topic-input", HTMLInputElement);
const lobbyInput = byId("lobby-input", HTMLInputElement);
const button = byId("create-button", HTMLButtonElement);
const errorText = byId("create-error", HTMLElement);

/**
 * A human sentence for a failed POST /api/rooms.
 * @param {Response} response
 * @returns {Promise<string>}
 */
async function failureText(response) {
  /** @type {unknown} */
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON
  }
  if (body && typeof body === "object") {
    const record = /** @type {Record<string, unknown>} */ (body);
    for (const key of ["message", "error", "detail"]) {
      const value = record[key];
      if (typeof value === "string" && value.trim()) return value.trim();
    }
  }
  if (response.status === 429) return t("page.landing.error_rate");
  if (response.status === 503) return t("page.landing.error_busy");
  return t("page.landing.error_status", { status: response.status });
}

/** @param {unknown} url */
function isUsableUrl(url) {
  if (typeof url !== "string") return false;
  try {
    const parsed = new URL(url, location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:";
  } catch {
    return false;
  }
}

async function createRoom() {
  errorText.textContent = "";
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    const topic = topicInput.value.trim();
    const response = await fetch("/api/rooms", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ topic: topic || null, lobby: lobbyInput.checked }),
      credentials: "same-origin",
    });
    if (!response.ok) {
      errorText.textContent = await failureText(response);
      return;
    }
    /** @type {unknown} */
    const room = await response.json();
    const fields = room && typeof room === "object" ? /** @type {{url?: unknown, host_url?: unknown}} */ (room) : {};
    // The host link makes this browser the meeting's host; the plain link is only a fallback for
    // a server that issues no host link.
    const target = isUsableUrl(fields.host_url) ? fields.host_url : isUsableUrl(fields.url) ? fields.url : null;
    if (typeof target !== "string") {
      errorText.textContent = t("page.landing.error_no_link");
      return;
    }
    location.assign(target);
  } catch {
    errorText.textContent = t("page.landing.error_unreachable");
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  void createRoom();
});
