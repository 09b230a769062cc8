// The signaling websocket: JSON messages both ways, and a ping that tells a dead connection from a
// quiet one. One SignalingSocket per connection attempt; reconnecting is the caller's business.

import { parseServerMessage } from "./wire.js";

/**
 * @typedef {import("./wire.js").ServerMessage} ServerMessage
 * @typedef {import("./wire.js").ClientMessage} ClientMessage
 *
 * @typedef {object} SocketHandlers
 * @property {() => void} onOpen
 * @property {(message: ServerMessage) => void} onMessage
 * @property {(code: number, opened: boolean) => void} onClose the socket closed (never after close())
 * @property {() => void} onDead a ping went unanswered: the connection is gone without a close
 */

const PING_INTERVAL_MS = 15_000;
/** A ping unanswered (no pong, no message at all) for this long: the connection is dead. */
const PONG_TIMEOUT_MS = 10_000;

export class SignalingSocket {
  /**
   * Opens at once; throws if the browser refuses the URL.
   * @param {string} url
   * @param {SocketHandlers} handlers
   */
  constructor(url, handlers) {
    /** @private @readonly */ this._handlers = handlers;
    /** @private */ this._opened = false;
    /** @private */ this._lastMessageAt = 0;
    /** @private */ this._lastPingAt = 0;
    /** @private @type {ReturnType<typeof setInterval> | null} */ this._pingTimer = null;
    const ws = new WebSocket(url);
    /** @private @readonly */ this._ws = ws;
    ws.onopen = () => {
      this._opened = true;
      this._lastMessageAt = Date.now();
      handlers.onOpen();
      this._startPing();
    };
    ws.onmessage = (event) => {
      this._lastMessageAt = Date.now();
      const message = parseServerMessage(event.data);
      if (message) handlers.onMessage(message);
    };
    ws.onclose = (event) => handlers.onClose(event.code, this._opened);
    ws.onerror = () => {
      // A close event always follows; handled there.
    };
  }

  /**
   * @param {ClientMessage} message
   * @returns {boolean} whether it was handed to the open websocket
   */
  send(message) {
    if (this._ws.readyState !== WebSocket.OPEN) return false;
    try {
      this._ws.send(JSON.stringify(message));
      return true;
    } catch {
      return false;
    }
  }

  /** Close without telling the handlers anything more. */
  close() {
    if (this._pingTimer !== null) {
      clearInterval(this._pingTimer);
      this._pingTimer = null;
    }
    const ws = this._ws;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(1000);
    } catch {
      // already closing
    }
  }

  /** @private */
  _startPing() {
    if (this._pingTimer !== null) clearInterval(this._pingTimer);
    this._lastPingAt = 0;
    this._pingTimer = setInterval(() => {
      // Dead if our previous ping got no answer (nor any other message) for a while. Measured from
      // the ping, not from the last message, so throttled timers in background tabs cannot misfire.
      const now = Date.now();
      if (this._lastPingAt > this._lastMessageAt && now - this._lastPingAt > PONG_TIMEOUT_MS) {
        this._handlers.onDead();
        return;
      }
      if (this.send({ type: "ping" })) this._lastPingAt = now;
    }, PING_INTERVAL_MS);
  }
}

/**
 * The HTTP status of the room's page (0 if unreachable). A websocket that never opened hides the
 * server's answer: a room that is gone answers 404 or 410 here (the page has no side effects).
 * @param {string} url
 * @returns {Promise<number>}
 */
export async function roomPageStatus(url) {
  try {
    const response = await fetch(url, { cache: "no-store", credentials: "same-origin" });
    return response.status;
  } catch {
    return 0; // network trouble
  }
}
