// Who is in the call, as the chat, hands and participant-list modules need it (no DOM): everyone
// else's latest ParticipantInfo, our own raised hand, the lobby's names (hosts), the order of the
// raised hands and the participant list's order.

/**
 * @typedef {import("./protocol.js").ParticipantInfo} ParticipantInfo
 *
 * @typedef {object} RosterState
 * @property {Map<string, ParticipantInfo>} people everyone else in the call, by participant id
 * @property {number | null} ownHandRaisedAt when our hand went up (server time, ms), or null
 * @property {Map<string, string>} knocks hosts: people waiting in the lobby, id -> name
 * @property {boolean} listOpen the participant list is open
 *
 * @typedef {object} Person one row of the participant list
 * @property {string} id
 * @property {string} name
 * @property {boolean} self
 * @property {boolean} host
 * @property {boolean} micOff
 * @property {boolean} mutedByHost
 * @property {number | null} handRaisedAt
 * @property {number | null} handOrder 1 for the first hand up, 2 for the next...; null when down
 */

/** @returns {RosterState} */
export function createRosterState() {
  return { people: new Map(), ownHandRaisedAt: null, knocks: new Map(), listOpen: false };
}

/**
 * A hand's time from a ParticipantInfo: a number, or null when down (or absent).
 * @param {ParticipantInfo} participant
 * @returns {number | null}
 */
export function handRaisedAt(participant) {
  const at = participant.hand_raised_at;
  return typeof at === "number" && Number.isFinite(at) ? at : null;
}

/**
 * The order in which the raised hands went up: by time, ties by participant id, so every page
 * numbers them the same.
 * @param {{id: string, handRaisedAt: number | null}[]} people
 * @returns {Map<string, number>} participant id -> 1, 2, ... (raised hands only)
 */
export function handOrder(people) {
  const raised = people.filter((person) => person.handRaisedAt !== null);
  raised.sort((a, b) => /** @type {number} */ (a.handRaisedAt) - /** @type {number} */ (b.handRaisedAt) || compareIds(a.id, b.id));
  return new Map(raised.map((person, index) => [person.id, index + 1]));
}

/**
 * @param {string} a
 * @param {string} b
 */
function compareIds(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The participant list's order: ourselves first, then raised hands in their order, then hosts,
 * then everyone by name.
 * @param {Person[]} people
 * @returns {Person[]}
 */
export function listOrder(people) {
  const rank = (/** @type {Person} */ person) => (person.self ? 0 : person.handOrder !== null ? 1 : person.host ? 2 : 3);
  return [...people].sort(
    (a, b) =>
      rank(a) - rank(b) ||
      (a.handOrder ?? 0) - (b.handOrder ?? 0) ||
      a.name.localeCompare(b.name, undefined, { sensitivity: "base" }) ||
      compareIds(a.id, b.id),
  );
}
