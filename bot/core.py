"""What every chat adapter shares: the room events it listens to, and how a call is summed up.

An adapter turns a chat command into one :meth:`RoomService.create_room` call and a message (the
*card*), then keeps the card up to date from the room service's events (:class:`RoomEvents`). It
keeps no room state of its own beyond where its card is, and forgets even that when the room ends.

:class:`ChatCards` does the bookkeeping: it listens to the room service, picks the events of rooms
its adapter created, and runs the adapter's card updates one at a time per room, in order, off the
room service's call path (a slow chat API never slows a join).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from signaling.rooms import Participant, Room

from .i18n import FALLBACK_LANGUAGE
from .i18n import text as words
from .port import ChatPort

__all__ = [
    "ENDED_TEXT",
    "MAX_LIFETIME_SECONDS",
    "NOT_HOST_TEXT",
    "NOT_WAITING_TEXT",
    "SIGNATURE_WINDOW_SECONDS",
    "CallSummary",
    "ChatCards",
    "HostClick",
    "SignedRequestGuard",
    "full_text",
    "parse_duration",
    "summarize",
]

MAX_LIFETIME_SECONDS = 7 * 24 * 3600
"""Longest ``--for`` a chat command accepts: a week."""
_DURATION = re.compile(r"(?:(\d{1,3})d)?(?:(\d{1,4})h)?(?:(\d{1,6})m(?:in)?)?")


SIGNATURE_WINDOW_SECONDS = 5 * 60
"""How far a signed chat request's timestamp may be from our clock (Slack's own rule, and the
same for Discord's HTTP interactions)."""
MAX_REMEMBERED_REQUESTS = 50_000
"""Signed requests remembered at once (32-byte digests): more than a busy server takes in a
window. Past it the oldest are forgotten first."""


class SignedRequestGuard:
    """Freshness and replay checks for requests whose signature has already been verified.

    A signature proves who sent a request, not that it is new: anyone who saw one (a proxy log, a
    captured request) could send it again. A request is accepted once: its signed content
    (timestamp and body) is remembered until its timestamp leaves the window, after which the
    freshness check refuses it anyway. Only verified requests are remembered, so strangers cannot
    fill the memory, and it is bounded all the same."""

    def __init__(
        self,
        window_seconds: float = SIGNATURE_WINDOW_SECONDS,
        max_remembered: int = MAX_REMEMBERED_REQUESTS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.window_seconds = window_seconds
        self.max_remembered = max_remembered
        self.clock = clock
        """Wall-clock time in seconds (injected by tests)."""
        self._seen: OrderedDict[bytes, float] = OrderedDict()  # digest -> forget after

    def fresh(self, timestamp: str) -> bool:
        """Whether a request signed at ``timestamp`` (Unix seconds) is inside the window."""
        try:
            signed_at = float(timestamp)
        except ValueError:
            return False
        return math.isfinite(signed_at) and abs(self.clock() - signed_at) <= self.window_seconds

    def first_time(self, timestamp: str, body: bytes | str) -> bool:
        """Remember a verified request; False if the same signed content came before."""
        now = self.clock()
        while self._seen and next(iter(self._seen.values())) <= now:
            self._seen.popitem(last=False)
        raw = body.encode() if isinstance(body, str) else body
        digest = hashlib.sha256(timestamp.encode() + b":" + raw).digest()
        if digest in self._seen:
            return False
        if len(self._seen) >= self.max_remembered:
            self._seen.popitem(last=False)
        try:
            signed_at = float(timestamp)
        except ValueError:
            signed_at = now
        self._seen[digest] = max(now, signed_at) + self.window_seconds
        return True

    def __len__(self) -> int:
        return len(self._seen)


def parse_duration(text: str) -> int | None:
    """Seconds in ``2h``, ``90m``, ``1h30m``, ``90min``, ``1d 12h`` (case and spaces do not
    matter); None if malformed, zero or longer than :data:`MAX_LIFETIME_SECONDS`. Both chat
    adapters read ``--for`` with it."""
    compact = "".join(text.split()).lower()
    match = _DURATION.fullmatch(compact) if compact else None
    if match is None or not any(match.groups()):
        return None
    days, hours, minutes = (int(group or 0) for group in match.groups())
    seconds = ((days * 24 + hours) * 60 + minutes) * 60
    return seconds if 0 < seconds <= MAX_LIFETIME_SECONDS else None


logger = logging.getLogger(__name__)

CardT = TypeVar("CardT")


@dataclass(frozen=True)
class CallSummary:
    """How a finished call is described on its card."""

    minutes: int
    """Length of the call, first join to last leave, rounded (at least 1 once anyone joined)."""
    people: int
    """Different people who were in it."""

    def text(self, language: str = FALLBACK_LANGUAGE) -> str:
        """``Ended · 23 min · 4 people`` (or ``Ended · nobody joined``), in ``language``."""
        if self.people == 0:
            return words(language, "chat.summary.nobody")
        key = "chat.summary.one" if self.people == 1 else "chat.summary.many"
        return words(language, key, minutes=self.minutes, people=self.people)


def summarize(room: Room, now: float) -> CallSummary:
    """Sum up a room that has just closed."""
    if room.first_joined_at is None:
        return CallSummary(minutes=0, people=0)
    end = room.empty_since if room.empty_since is not None else now
    seconds = max(0.0, end - room.first_joined_at)
    return CallSummary(minutes=max(1, round(seconds / 60)), people=room.people_count)


def call_seconds(room: Room, now: float) -> int:
    """The call's length in whole seconds (what Slack's ``calls.end`` takes)."""
    if room.first_joined_at is None:
        return 0
    end = room.empty_since if room.empty_since is not None else now
    return max(0, round(end - room.first_joined_at))


ENDED_TEXT = words(FALLBACK_LANGUAGE, "chat.core.ended")
"""A click on a card whose room is gone (in English; :meth:`ChatCards.host_click` speaks the
clicker's language)."""
NOT_HOST_TEXT = words(FALLBACK_LANGUAGE, "chat.core.not_host")
"""A click on Admit / Deny by anyone but the host (who ran the command)."""
NOT_WAITING_TEXT = words(FALLBACK_LANGUAGE, "chat.core.not_waiting")
"""A click for someone already answered (in the call, by another click) or gone."""


def full_text(room: Room, language: str = FALLBACK_LANGUAGE) -> str:
    """An Admit that the room's size refused."""
    return words(language, "chat.core.full", max=room.max_participants)


@dataclass(frozen=True)
class HostClick(Generic[CardT]):
    """What became of a host's Admit / Deny click (:meth:`ChatCards.host_click`)."""

    card: CardT | None
    """The room's card; None once the meeting ended."""
    room: Room | None
    """The room; None once the meeting ended."""
    text: str | None
    """What to tell the clicker alone (in their language), or None: this click admitted or
    denied someone."""
    refused: bool = False
    """The clicker may not answer this knock (``refuse_clicker`` said so)."""
    no_longer_waiting: bool = False
    """The person was answered already, or gave up."""


@dataclass
class _Tracked(Generic[CardT]):
    card: CardT | None
    """None until a card posted by another node is found in the shared store."""
    queue: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    running: bool = False


class ChatCards(Generic[CardT]):
    """The cards of one adapter, kept up to date from room events.

    Subclasses implement :meth:`joined`, :meth:`left` and :meth:`ended` (each may call the chat
    API); :meth:`track` registers the card of a room the adapter created.
    """

    origin: str = ""
    """The ``Room.origin`` this adapter's rooms carry."""

    def __init__(self, port: ChatPort) -> None:
        self.port = port
        """What the adapter may ask of meetnow (the only thing it calls)."""
        self._cards: dict[str, _Tracked[CardT]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        port.add_listener(self)

    def track(self, room: Room, card: CardT) -> None:
        """Keep ``card`` up to date with ``room`` until the room ends."""
        self._cards[room.id] = _Tracked(card)

    def remember(self, room: Room, card: CardT) -> None:
        """Keep where ``card`` is with its room (the store, when rooms outlive a restart), so
        :meth:`restore` finds it after one. Call once the card's address is known."""
        reference = self.reference(card)
        if reference is not None:
            self.port.remember_card(room, self.origin, json.dumps(reference))

    async def restore(self) -> int:
        """At start-up: track again the cards of rooms that outlived a restart; how many."""
        restored = 0
        for room_id, text in (await self.port.remembered_cards(self.origin)).items():
            room = self.port.get_room(room_id)
            if room is None or room.origin != self.origin or room_id in self._cards:
                continue
            try:
                card = self.from_reference(room, json.loads(text))
            except (ValueError, KeyError, TypeError) as error:
                logger.warning("%s card not restored: %s", self.origin, type(error).__name__)
                continue
            if card is not None:
                self.track(room, card)
                restored += 1
        return restored

    def card(self, room_id: str) -> CardT | None:
        tracked = self._cards.get(room_id)
        return tracked.card if tracked else None

    def cards(self) -> list[CardT]:
        return [tracked.card for tracked in self._cards.values() if tracked.card is not None]

    async def drained(self) -> None:
        """Wait until every scheduled card update has run (tests, shutdown)."""
        while any(t.running or t.queue for t in self._cards.values()):  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    # RoomEvents -------------------------------------------------------------------------------

    def participant_joined(self, room: Room, participant: Participant) -> None:
        self._schedule(room, lambda card: self.joined(card, room, participant))

    def participant_left(self, room: Room, participant: Participant) -> None:
        self._schedule(room, lambda card: self.left(card, room, participant))

    def room_closed(self, room: Room, reason: str) -> None:
        now = self.port.now()
        self._schedule(room, lambda card: self.ended(card, room, summarize(room, now)), last=True)

    def participant_waiting(self, room: Room, participant: Participant) -> None:
        self._schedule(room, lambda card: self.knocked(card, room, participant))

    def waiting_resolved(self, room: Room, participant: Participant, admitted: bool) -> None:
        self._schedule(room, lambda card: self.knock_answered(card, room, participant, admitted))

    def room_changed(self, room: Room) -> None:
        pass

    # For adapters ------------------------------------------------------------------------------

    def host_link(self, room: Room) -> str:
        """A link that makes its holder a host: send it to the command's author alone
        (ephemeral message), never in the channel. The token rides in the URL fragment."""
        return self.port.host_url(room)

    def room_url(self, room: Room) -> str:
        """The shareable link (what the card's Join button opens)."""
        return self.port.room_url(room)

    async def host_click(
        self,
        room_id: str,
        participant_id: str,
        admit: bool,
        refuse_clicker: Callable[[CardT], str | None],
        language: str = FALLBACK_LANGUAGE,
    ) -> HostClick[CardT]:
        """The Admit / Deny flow every adapter shares: find the card -> has the meeting ended?
        -> is the clicker its host (``refuse_clicker``: the adapter's check of who clicked, a
        refusal text or None) -> answer the knock -> was the room full? The adapter renders the
        outcome (a private reply, a refreshed card); its texts are in the clicker's ``language``."""
        card = self.card(room_id) if room_id else None
        room = self.port.get_room(room_id) if card is not None else None
        if card is None or room is None or room.origin != self.origin:
            return HostClick(None, None, words(language, "chat.core.ended"))
        refusal = refuse_clicker(card)
        if refusal is not None:
            return HostClick(card, room, refusal, refused=True)
        gone = HostClick(
            card, room, words(language, "chat.core.not_waiting"), no_longer_waiting=True
        )
        if self.port.cards_shared():
            # The lobby is in memory on the room's node alone, maybe not this one: ask it.
            outcome = await self.port.answer_knock_anywhere(room.id, participant_id, admit)
        elif participant_id not in room.waiting:
            return gone
        else:
            outcome = self.port.answer_knock(room, participant_id, admit)
        if outcome == "full":
            return HostClick(card, room, full_text(room, language))
        if outcome == "not_waiting":
            return gone
        return HostClick(card, room, None)

    # To implement ------------------------------------------------------------------------------

    async def joined(self, card: CardT, room: Room, participant: Participant) -> None:
        """Someone joined the room of ``card``."""

    async def left(self, card: CardT, room: Room, participant: Participant) -> None:
        """Someone left the room of ``card``."""

    async def ended(self, card: CardT, room: Room, summary: CallSummary) -> None:
        """The room of ``card`` closed; the card is forgotten after this."""

    async def knocked(self, card: CardT, room: Room, participant: Participant) -> None:
        """Someone waits in the lobby: offer Admit / Deny that only the host's clicks can use."""

    async def knock_answered(
        self, card: CardT, room: Room, participant: Participant, admitted: bool
    ) -> None:
        """A knock was answered (in the call or in the chat), or the knocker gave up."""

    def reference(self, card: CardT) -> dict[str, Any] | None:
        """Where ``card`` is, as small JSON (never a token); None: nothing worth keeping."""
        return None

    def from_reference(self, room: Room, reference: dict[str, Any]) -> CardT | None:
        """The card :meth:`reference` described, for ``room``, after a restart."""
        return None

    # Machinery ---------------------------------------------------------------------------------

    def _schedule(
        self, room: Room, update: Callable[[CardT], Awaitable[None]], *, last: bool = False
    ) -> None:
        if room.origin != self.origin:
            return
        tracked = self._cards.get(room.id)
        if tracked is None:
            if not self.port.cards_shared():
                return
            # Several nodes: the chat command (HTTP) may have landed on another node than the
            # room's, where its events happen: find the card that node remembered, first.
            tracked = _Tracked(None)
            self._cards[room.id] = tracked
            tracked.queue.append(lambda: self._find(room, tracked))
        tracked.queue.append(lambda: self._apply(update, tracked))
        if last:
            # Nothing about a room outlives it: drop the card once its last update has run.
            tracked.queue.append(lambda: self._forget(room.id))
        if not tracked.running:
            tracked.running = True
            task = asyncio.get_running_loop().create_task(self._run(room.id, tracked))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, room_id: str, tracked: _Tracked[CardT]) -> None:
        try:
            while tracked.queue:
                step = tracked.queue.pop(0)
                try:
                    await step()
                except Exception as error:
                    # Type only: chat API errors can carry names and links, which stay out of logs.
                    logger.error("%s card update failed: %s", self.origin, type(error).__name__)
        finally:
            tracked.running = False

    async def _forget(self, room_id: str) -> None:
        self._cards.pop(room_id, None)

    async def _apply(
        self, update: Callable[[CardT], Awaitable[None]], tracked: _Tracked[CardT]
    ) -> None:
        if tracked.card is not None:
            await update(tracked.card)

    async def _find(self, room: Room, tracked: _Tracked[CardT]) -> None:
        """Track the card another node posted for ``room``, if it remembered one (else this
        event goes without, and the next one looks again)."""
        text = (await self.port.remembered_cards(self.origin)).get(room.id)
        card = None
        if text is not None:
            try:
                card = self.from_reference(room, json.loads(text))
            except (ValueError, KeyError, TypeError) as error:
                logger.warning("%s card not found: %s", self.origin, type(error).__name__)
        tracked.card = card
        if card is None and self._cards.get(room.id) is tracked:
            del self._cards[room.id]
