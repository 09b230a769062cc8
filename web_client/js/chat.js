// Chat, the protocol side (no DOM): what the page remembers of the chat, how long a message is
// (as the server counts it), which server errors answer a chat message, and how a message's text
// splits into plain text and http(s) links. chat-view.js shows it.

/**
 * @typedef {import("./protocol.js").ChatDetail} ChatDetail
 *
 * @typedef {{kind: "text", text: string} | {kind: "link", text: string, href: string}} TextSegment
 *
 * @typedef {object} ChatState
 * @property {ChatDetail[]} messages what was said since we joined (kept across a reconnect of
 *   this page; emptied when the call is over), oldest first, at most MAX_KEPT_MESSAGES
 * @property {number} unread messages from others that arrived while the panel was closed
 * @property {boolean} open the chat panel is open
 * @property {string[]} pending texts sent and not yet echoed or refused, oldest first (the server
 *   answers each chat message, in order, with its echo or an error)
 */

/** Longest message the server accepts, in Unicode code points. */
export const MAX_CHAT_CHARACTERS = 2000;
/** The length counter shows from this many code points on. */
export const COUNTER_FROM = 1800;
/** Older messages are dropped from the page past this many (a long meeting's memory). */
export const MAX_KEPT_MESSAGES = 500;

/** Error codes that always answer a chat message. */
const CHAT_ERROR_CODES = new Set(["message_too_long", "chat_rate_limited"]);
/** Error codes that answer a chat message when one is waiting for its answer (the connection's
 * general limit and the blank or unencodable text answer other messages too). */
const CHAT_ERROR_CODES_IF_PENDING = new Set(["invalid_message", "rate_limited"]);

/** Only these become links: never javascript:, data:, file: or anything else. */
const LINK_PROTOCOLS = new Set(["http:", "https:"]);
/** Punctuation that ends a sentence rather than a URL ("see https://example.org/x."). */
const TRAILING_PUNCTUATION = /[.,;:!?)\]}'"»]+$/;

/** @returns {ChatState} */
export function createChatState() {
  return { messages: [], unread: 0, open: false, pending: [] };
}

/**
 * The length the server checks: Unicode code points, not UTF-16 units (an emoji is one).
 * @param {string} text
 * @returns {number}
 */
export function codePointLength(text) {
  return [...text].length;
}

/**
 * Whether a text is worth sending: the server refuses empty or whitespace-only messages.
 * @param {string} text
 * @returns {boolean}
 */
export function isBlank(text) {
  return text.trim() === "";
}

/**
 * Whether this server error answers a chat message of ours.
 * @param {ChatState} chat
 * @param {string} code
 * @returns {boolean}
 */
export function isChatRefusal(chat, code) {
  return CHAT_ERROR_CODES.has(code) || (chat.pending.length > 0 && CHAT_ERROR_CODES_IF_PENDING.has(code));
}

/**
 * Remember a message; count it unread if it is someone else's and the panel is closed.
 * @param {ChatState} chat
 * @param {ChatDetail} message
 * @param {boolean} ours
 */
export function addMessage(chat, message, ours) {
  chat.messages.push(message);
  if (chat.messages.length > MAX_KEPT_MESSAGES) chat.messages.splice(0, chat.messages.length - MAX_KEPT_MESSAGES);
  if (!ours && !chat.open) chat.unread += 1;
  if (ours) chat.pending.shift();
}

/** @param {ChatState} chat */
export function clearChat(chat) {
  chat.messages.length = 0;
  chat.unread = 0;
  chat.pending.length = 0;
}

/**
 * A link's address if `word` is an http(s) URL, else null. Parsed with the URL parser, so what
 * becomes a link is exactly what the browser would open.
 * @param {string} word
 * @returns {string | null}
 */
function httpAddress(word) {
  if (!/^https?:\/\//i.test(word)) return null;
  try {
    const url = new URL(word);
    return LINK_PROTOCOLS.has(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

/**
 * Split a message into plain text and links (http and https only); everything else stays text.
 * @param {string} text
 * @returns {TextSegment[]}
 */
export function linkSegments(text) {
  /** @type {TextSegment[]} */
  const segments = [];
  /** @param {string} plain */
  const addText = (plain) => {
    if (!plain) return;
    const last = segments[segments.length - 1];
    if (last && last.kind === "text") last.text += plain;
    else segments.push({ kind: "text", text: plain });
  };
  for (const part of text.split(/(\s+)/)) {
    const trailing = part.match(TRAILING_PUNCTUATION)?.[0] ?? "";
    const word = part.slice(0, part.length - trailing.length);
    const href = word ? httpAddress(word) : null;
    if (href === null) {
      addText(part);
    } else {
      segments.push({ kind: "link", text: word, href });
      addText(trailing);
    }
  }
  return segments;
}

/**
 * A message's time as the reader's local HH:MM.
 * @param {number} sentAt milliseconds since the epoch
 * @returns {string}
 */
export function localTime(sentAt) {
  const date = new Date(sentAt);
  return `${String(date.getHours()).padStart(2, "0")}:${String(date.getMinutes()).padStart(2, "0")}`;
}
