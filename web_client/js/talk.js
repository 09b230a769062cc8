// Chat, hands and the participant list on the call's events: registered after call-events.js's
// handlers (so tiles exist), guarded the same way (only the page's current call counts), and the
// announcements (announce.js) of joins, leaves, hands and messages.

import { announce, playSound, STRINGS as ANNOUNCE, wireSounds } from "./announce.js";
import { ui } from "./dom.js";
import { forgetPendingChat, resetChat, showChatButton, showChatMessage, wireChat } from "./chat-view.js";
import { renderHands, showHandButton, wireHandButton } from "./hands.js";
import { renderParticipants, showParticipantsButton, wireParticipants } from "./participants.js";
import { handRaisedAt } from "./roster.js";
import { state } from "./state.js";

/**
 * @typedef {import("./protocol.js").MeetnowCall} MeetnowCall
 * @typedef {import("./protocol.js").JoinedDetail} JoinedDetail
 * @typedef {import("./protocol.js").ParticipantDetail} ParticipantDetail
 * @typedef {import("./protocol.js").ParticipantLeftDetail} ParticipantLeftDetail
 * @typedef {import("./protocol.js").KnockDetail} KnockDetail
 * @typedef {import("./protocol.js").KnockResolvedDetail} KnockResolvedDetail
 * @typedef {import("./protocol.js").ChatDetail} ChatDetail
 */

/** The control bar's buttons and the side panels (once, at load). */
export function wireTalk() {
  wireChat();
  wireParticipants();
  wireHandButton();
  wireSounds();
  // Our own microphone toggle (room.js renders the controls first): the list shows it too.
  ui.micButton.addEventListener("click", renderParticipants);
}

function render() {
  renderHands();
  renderParticipants();
}

/** @param {boolean} inCall */
function showButtons(inCall) {
  showChatButton(inCall);
  showParticipantsButton(inCall);
  showHandButton(inCall);
}

/** @param {JoinedDetail} detail */
function onJoined(detail) {
  const roster = state.roster;
  roster.people = new Map(detail.participants.map((participant) => [participant.id, participant]));
  roster.knocks = new Map(detail.host ? detail.waiting.map((knock) => [knock.id, knock.name]) : []);
  forgetPendingChat();
  // `joined` says where our own hand is: the server keeps a session's hand across reconnects and
  // reloads. A page that rejoins with its hand up where the server has none (the call moved to
  // another node, or the server restarted: hands live in memory) raises it again.
  const raisedHere = roster.ownHandRaisedAt !== null;
  roster.ownHandRaisedAt = detail.handRaisedAt;
  if (detail.rejoined && raisedHere && detail.handRaisedAt === null) state.call?.raiseHand(true);
  showButtons(true);
  render();
}

/** @param {ParticipantDetail} detail */
function onParticipantJoined(detail) {
  const participant = detail.participant;
  const known = state.roster.people.has(participant.id);
  state.roster.people.set(participant.id, participant);
  if (!known) {
    announce(ANNOUNCE.joined(participant.name));
    playSound("join");
  }
  render();
}

/** @param {ParticipantDetail} detail */
function onParticipantUpdated(detail) {
  const participant = detail.participant;
  const before = state.roster.people.get(participant.id);
  state.roster.people.set(participant.id, participant);
  if (before && handRaisedAt(before) === null && handRaisedAt(participant) !== null) {
    announce(ANNOUNCE.handRaised(participant.name));
    playSound("hand");
  }
  render();
}

/** @param {ParticipantDetail} detail */
function onSelfUpdated(detail) {
  state.roster.ownHandRaisedAt = handRaisedAt(detail.participant);
  render();
}

/** @param {ParticipantLeftDetail} detail */
function onParticipantLeft(detail) {
  const participant = state.roster.people.get(detail.participantId);
  if (!participant) return;
  state.roster.people.delete(detail.participantId);
  announce(ANNOUNCE.left(participant.name));
  playSound("leave");
  render();
}

/** Hosts: the knock's visible notice (call-events.js) is already a polite live region. @param {KnockDetail} detail */
function onKnock(detail) {
  if (!state.amHost) return;
  state.roster.knocks.set(detail.participant.id, detail.participant.name);
  playSound("knock");
  renderParticipants();
}

/** @param {KnockResolvedDetail} detail */
function onKnockResolved(detail) {
  state.roster.knocks.delete(detail.participantId);
  renderParticipants();
}

/** In the lobby: nothing of the call (no chat, no list, no hand). */
function onWaiting() {
  showButtons(false);
}

/**
 * Listen to this call's events for chat, hands and the list (call-events.js calls it last).
 * @param {MeetnowCall} current
 */
export function listenToTalk(current) {
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
  on("participant-joined", onParticipantJoined);
  on("participant-updated", onParticipantUpdated);
  on("self-updated", onSelfUpdated);
  on("participant-left", onParticipantLeft);
  on("knock", onKnock);
  on("knock-resolved", onKnockResolved);
  on("chat", /** @param {ChatDetail} detail */ (detail) => showChatMessage(detail));
  // Our own mute, camera or host rights may have changed with these: the list shows them.
  on("room-updated", renderParticipants);
}

/** The call is over (left or ended): forget who was there and what was said. */
export function resetTalk() {
  state.roster.people.clear();
  state.roster.knocks.clear();
  state.roster.ownHandRaisedAt = null;
  resetChat();
  showButtons(false);
  render();
}
