// What the page does on each event of the current call (see the list in protocol.js), and the reset
// once a call is over.

import { t } from "./i18n.js";
import { chatRefused } from "./chat-view.js";
import { renderControls } from "./controls.js";
import { showScreen, showTopic, ui } from "./dom.js";
import { showEnded } from "./ended.js";
import { addKnock, clearKnocks, removeKnock, setHost, setRoomState } from "./host.js";
import { stopMedia } from "./media.js";
import { stopMutedTalkWatch } from "./muted-talk.js";
import { clearNotice, clearNotices, showNotice } from "./notices.js";
import { setVideoStream } from "./playback.js";
import { screenShareRefused, stopScreenShare } from "./screen.js";
import { setOwnScreenId, setRemoteScreen } from "./screen-tiles.js";
import { clearSpeakers, setSpeakers } from "./speakers.js";
import { hasVideoTrack, state } from "./state.js";
import { listenToTalk, resetTalk } from "./talk.js";
import { clearGrid, removeParticipant, setRemoteStream, upsertParticipant } from "./tiles.js";

/**
 * @typedef {import("./protocol.js").MeetnowCall} MeetnowCall
 * @typedef {import("./protocol.js").JoinedDetail} JoinedDetail
 * @typedef {import("./protocol.js").WaitingDetail} WaitingDetail
 * @typedef {import("./protocol.js").ParticipantDetail} ParticipantDetail
 * @typedef {import("./protocol.js").ParticipantLeftDetail} ParticipantLeftDetail
 * @typedef {import("./protocol.js").RemoteStreamDetail} RemoteStreamDetail
 * @typedef {import("./protocol.js").ReconnectingDetail} ReconnectingDetail
 * @typedef {import("./protocol.js").ServerErrorDetail} ServerErrorDetail
 * @typedef {import("./protocol.js").EndedDetail} EndedDetail
 * @typedef {import("./protocol.js").KnockDetail} KnockDetail
 * @typedef {import("./protocol.js").KnockResolvedDetail} KnockResolvedDetail
 * @typedef {import("./protocol.js").RoomUpdatedDetail} RoomUpdatedDetail
 * @typedef {import("./protocol.js").SpeakersDetail} SpeakersDetail
 */

/** @param {JoinedDetail} detail */
function onJoined(detail) {
  clearNotice("connecting");
  if (!state.everJoined) clearNotice("connection");
  state.everJoined = true;
  clearNotice("knock-wait");
  if (state.localTile) {
    state.localTile.id = detail.participantId;
    state.localTile.root.setAttribute("data-participant", detail.participantId);
  }
  setOwnScreenId(detail.participantId);
  // Ids are new after a reconnect: the relay says again who speaks.
  clearSpeakers();
  if (!ui.waiting.hidden) ui.waitingPreview.srcObject = null;
  showScreen(ui.call);
  // A new participant on the server: its host mute (if any) does not carry over.
  state.mutedByHost = false;
  setRoomState(detail.room);
  // After a reconnect `participants` is everyone else: drop the tiles of those who left meanwhile.
  const present = new Set(detail.participants.map((participant) => participant.id));
  for (const participantId of [...state.tiles.keys()]) if (!present.has(participantId)) removeParticipant(participantId);
  for (const participant of detail.participants) upsertParticipant(participant);
  clearKnocks();
  setHost(detail.host);
  if (detail.host) for (const knock of detail.waiting) addKnock(knock);
  renderControls();
  showTopic(detail.room?.topic);
}

/** @param {WaitingDetail} detail */
function onWaiting(detail) {
  clearNotice("connecting");
  clearNotice("connection");
  setHost(false);
  setRoomState(detail.room);
  const topic = detail.room?.topic ?? "";
  showTopic(topic);
  ui.waitingTopic.textContent = topic ? t("page.waiting.topic", { topic }) : "";
  ui.waitingTopic.hidden = !topic;
  setVideoStream(ui.waitingPreview, hasVideoTrack() ? state.localStream : null);
  showScreen(ui.waiting);
}

/** A host changed us: made us a host, muted us or allowed our audio again. @param {ParticipantDetail} detail */
function onSelfUpdated(detail) {
  const host = detail.participant.host === true;
  const muted = detail.participant.muted_by_host === true;
  if (host && !state.amHost) showNotice("host", t("page.notice.now_host"), { timeoutMs: 5000 });
  if (muted !== state.mutedByHost) {
    showNotice(
      "muted-by-host",
      muted ? t("page.notice.muted_by_host") : t("page.notice.audio_allowed"),
      { kind: muted ? "warn" : "info", timeoutMs: 6000 },
    );
  }
  state.mutedByHost = muted;
  if (host !== state.amHost) setHost(host);
  renderControls();
}

/** @param {KnockDetail} detail */
function onKnock(detail) {
  if (!state.amHost) return;
  addKnock(detail.participant);
  const name = detail.participant.name || "Guest";
  showNotice("knock", `${name} is waiting in the lobby.`, { timeoutMs: 4000 });
}

/** @param {RoomUpdatedDetail} detail */
function onRoomUpdated(detail) {
  const wasLocked = state.room.locked;
  setRoomState(detail.room);
  if (state.room.locked !== wasLocked) {
    showNotice("room", state.room.locked ? t("page.notice.locked") : t("page.notice.unlocked"), {
      timeoutMs: 4000,
    });
  }
}

/** @param {ReconnectingDetail} detail */
function onReconnecting(detail) {
  clearNotice("connecting");
  const seconds = Math.max(1, Math.round(detail.delayMs / 1000));
  const what = state.everJoined ? t("page.notice.reconnecting") : t("page.notice.unreachable");
  showNotice("connection", detail.attempt > 1 ? `${what} (next try in ${seconds} s)` : what, { kind: "warn" });
}

/** A non-fatal error: the call goes on. @param {ServerErrorDetail} detail */
function onServerError(detail) {
  if (chatRefused(detail)) return; // shown next to the chat's Message field
  if (detail.code === "rate_limited") {
    showNotice("rate", t("page.notice.rate_limited"), {
      kind: "warn",
      timeoutMs: 3000,
    });
  } else if (detail.code === "not_host") {
    showNotice("error", t("page.notice.host_only"), { kind: "error", timeoutMs: 5000 });
  } else if (detail.code === "too_many_screen_shares") {
    screenShareRefused(detail.message);
  } else {
    showNotice("error", detail.message, { kind: "error", timeoutMs: 8000 });
  }
}

/** @param {EndedDetail} detail */
function onEnded(detail) {
  resetAfterCall();
  showEnded(detail);
}

/** The call is over (left or ended): release the devices and empty the call's screen. */
export function resetAfterCall() {
  state.call = null;
  state.inCall = false;
  ui.waitingPreview.srcObject = null;
  stopScreenShare({ tellServer: false });
  stopMutedTalkWatch();
  clearSpeakers();
  stopMedia();
  clearGrid();
  setHost(false);
  setRoomState(null);
  clearNotices();
  resetTalk();
}

/**
 * Send this call's events to the handlers above, for as long as it is the page's current call.
 * @param {MeetnowCall} current
 */
export function listenToCall(current) {
  /**
   * @template T
   * @param {string} type
   * @param {(detail: T) => void} handler
   */
  const on = (type, handler) => {
    current.addEventListener(type, (event) => {
      if (state.call !== current) return;
      handler(/** @type {CustomEvent<T>} */ (event).detail);
    });
  };
  on("joined", onJoined);
  on("waiting", onWaiting);
  on("participant-joined", /** @param {ParticipantDetail} detail */ (detail) => upsertParticipant(detail.participant));
  on("participant-updated", /** @param {ParticipantDetail} detail */ (detail) => upsertParticipant(detail.participant));
  on("self-updated", onSelfUpdated);
  on("knock", onKnock);
  on("knock-resolved", /** @param {KnockResolvedDetail} detail */ (detail) => removeKnock(detail.participantId));
  on("room-updated", onRoomUpdated);
  on("participant-left", /** @param {ParticipantLeftDetail} detail */ (detail) => removeParticipant(detail.participantId));
  on("remote-stream", /** @param {RemoteStreamDetail} detail */ (detail) => setRemoteStream(detail.participantId, detail.stream));
  on("remote-screen", /** @param {RemoteStreamDetail} detail */ (detail) => setRemoteScreen(detail.participantId, detail.stream));
  on("speakers", setSpeakers);
  on("reconnecting", onReconnecting);
  on("reconnected", () => showNotice("connection", t("page.notice.reconnected"), { timeoutMs: 3000 }));
  on("server-error", onServerError);
  on("ended", onEnded);
  listenToTalk(current); // chat, hands, participant list: after the handlers above (tiles exist)
}
