"""The room service: create, look up, join, leave and expire rooms.

The rooms of this process are kept in memory; with a :class:`RoomStore` (SQLite by default, see
:mod:`signaling.room_store`) every change that must survive a restart is also written there, in
order, off the call path, and :meth:`RoomService.open` reads it all back at start-up. Clock and id
source are injected so tests can move time and predict nothing else. Chat adapters and the websocket layer
call this service; none of them keeps room state of its own. The model it works on is in
:mod:`signaling.room_model` (re-exported here), ended rooms' ids in :mod:`signaling.tombstones`.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime

from .errors import (
    ParticipantRemoved,
    RoomFull,
    RoomGone,
    RoomLocked,
    RoomNotFound,
    TooManyRooms,
)
from .room_model import (
    ROOM_ID_PATTERN,
    Clock,
    Participant,
    Room,
    RoomEvents,
    RoomLimits,
    new_participant_id,
    new_room_id,
)
from .room_store import RoomStore, StoreWriter, record_of, room_from
from .text import clean_text
from .tombstones import Tombstones, secret_key

logger = logging.getLogger(__name__)

__all__ = [
    "LINK_EXPIRED",
    "ROOM_ID_PATTERN",
    "Participant",
    "Room",
    "RoomEvents",
    "RoomLimits",
    "RoomService",
    "RoomStore",
    "iso_utc",
    "new_participant_id",
    "new_room_id",
]

LINK_EXPIRED = (
    "This meeting link no longer lets new people in: its time is up. Ask the host for a new link."
)
"""Why ``join`` is refused after a ``--for`` lifetime (the page shows it; the meeting may go on)."""


class RoomService:
    """Creates rooms and tracks who is in them."""

    def __init__(
        self,
        limits: RoomLimits | None = None,
        *,
        store: RoomStore | None = None,
        clock: Clock = time.time,
        make_room_id: Callable[[], str] = new_room_id,
        make_participant_id: Callable[[], str] = new_participant_id,
    ) -> None:
        self.limits = limits or RoomLimits()
        self._by_id: dict[str, Room] = {}
        """The open rooms of this process, by id."""
        self._writer = StoreWriter(store) if store is not None else None
        self._durable = store is not None
        """Writes to the durable store, in order; None: rooms live in memory only."""
        self._clock = clock
        self._make_room_id = make_room_id
        self._make_participant_id = make_participant_id
        self._listeners: list[RoomEvents] = []
        self._tombstones = Tombstones()
        self._closing_store: RoomStore | None = None

    @property
    def durable(self) -> bool:
        """Whether rooms outlive this process (a store keeps them)."""
        return self._durable

    async def open(self) -> None:
        """Read the rooms and tombstones the store kept (at start-up, before serving anyone).
        Rooms come back with nobody connected: pages reconnect by their session."""
        if self._writer is None:
            return
        state = await self._writer.store.load()
        now = self._clock()
        for record in state.rooms:
            self._by_id[record.id] = room_from(record, now)
        self._tombstones.restore(state.tombstones)
        self._writer.start()
        self.sweep()

    async def detach(self) -> None:
        """Write what is queued and stop writing (a durable server stopping): what happens
        while the server goes down, its own websockets closing, is not the people leaving."""
        writer, self._writer = self._writer, None
        if writer is not None:
            self._closing_store = writer.store
            await writer.stop()

    async def close(self) -> None:
        """Write what is queued and close the store."""
        await self.detach()
        if self._closing_store is not None:
            await self._closing_store.close()
            self._closing_store = None

    async def flush(self) -> None:
        """Wait until every change so far is in the store (tests, shutdown)."""
        if self._writer is not None:
            await self._writer.flush()

    async def fetch(self, room_id: str) -> None:
        """Bring this node's copy of ``room_id`` up to date before a lookup. One node holds
        every room itself: nothing to do (:mod:`signaling.redis_rooms` reads other nodes')."""

    async def publish(self) -> None:
        """Wait until other nodes can see this node's changes so far (one node: nothing to
        wait for; :mod:`signaling.redis_rooms` writes them to Redis first)."""

    async def claim(self, room_id: str) -> str | None:
        """Make this node the one ``room_id``'s call runs on, unless another live node already
        is: returns that node's id, None when it is this one (always, for one node)."""
        return None

    def remember(self, room_id: str, name: str, value: str) -> None:
        """Keep a small value (a chat card's address) with an open room until it closes."""
        writer = self._writer
        if writer is not None and room_id in self._by_id:
            writer.submit(lambda: writer.store.put_chat_value(room_id, name, value))

    async def remembered(self, name: str) -> dict[str, str]:
        """The values kept under ``name`` (:meth:`remember`), by open room id."""
        if self._writer is None:
            return {}
        await self._writer.flush()
        values = await self._writer.store.chat_values(name)
        return {room_id: value for room_id, value in values.items() if room_id in self._by_id}

    def _save(self, room: Room) -> None:
        writer = self._writer
        if writer is not None and self._by_id.get(room.id) is room:
            record = record_of(room)
            writer.submit(lambda: writer.store.save_room(record))

    def add_listener(self, listener: RoomEvents) -> None:
        """Be told of every join, leave and room end."""
        self._listeners.append(listener)

    def now(self) -> float:
        return self._clock()

    def create_room(
        self,
        topic: str | None = None,
        *,
        origin: str | None = None,
        lobby: bool = False,
        lifetime_seconds: float | None = None,
    ) -> Room:
        """Open a new room. ``lobby``: newcomers wait for a host. ``lifetime_seconds``: the link
        admits nobody new after that long (default: only the unused-room TTL applies). Raises
        :class:`TooManyRooms` at the server's cap."""
        # Sweeping scans every room: only when at the cap (the server also sweeps periodically).
        if len(self._by_id) >= self.limits.max_rooms:
            self.sweep()
        if len(self._by_id) >= self.limits.max_rooms:
            raise TooManyRooms("This server has too many open rooms; try again later.")
        topic = clean_text(topic, self.limits.topic_max_length) if topic else None
        now = self._clock()
        room_id = self._make_room_id()
        # Only an injected id source can collide; an ended room's id never comes back either.
        while self._by_id.get(room_id) is not None or room_id in self._tombstones:
            room_id = self._make_room_id()
        ttl = self.limits.unused_ttl_seconds
        room = Room(
            id=room_id,
            topic=topic or None,
            created_at=now,
            # An explicit lifetime (``--for``) replaces the unused-room TTL, longer or shorter.
            expires_at=now + (lifetime_seconds if lifetime_seconds else ttl),
            max_participants=self.limits.max_participants,
            origin=origin,
            lobby=lobby,
            join_deadline=now + lifetime_seconds if lifetime_seconds else None,
        )
        self._by_id[room.id] = room
        self._save(room)
        return room

    def issue_host_token(self, room: Room) -> str:
        """A new secret that makes whoever presents it a host of ``room``. Only its hash is kept:
        hand it to the room's creator alone, never in the shareable link."""
        token = secrets.token_urlsafe(24)
        room.host_keys.append(secret_key(token))
        self._save(room)
        return token

    def is_host_token(self, room: Room, token: str | None) -> bool:
        """Constant-time check of a presented host token."""
        if not token:
            return False
        presented = secret_key(token)
        found = False
        for key in room.host_keys:
            found |= hmac.compare_digest(key, presented)
        return found

    def get_room(self, room_id: str) -> Room | None:
        """The open room with this id, or None for a malformed, unknown, expired or closed one."""
        if not ROOM_ID_PATTERN.fullmatch(room_id):
            return None
        room = self._by_id.get(room_id)
        if room is None:
            return None
        if self._is_due(room, self._clock()):
            self._close(room, "expired")
            return None
        return room

    def is_gone(self, room_id: str) -> bool:
        """Whether this id belonged to a room that ended or expired (answered 410, not 404)."""
        if not ROOM_ID_PATTERN.fullmatch(room_id):
            return False
        return self._tombstones.holds(room_id, self._clock())

    def join(
        self, room_id: str, name: str, session: str, *, host_token: str | None = None
    ) -> tuple[Participant, Participant | None]:
        """Add a participant, or put them in the lobby (``participant.id in room.waiting``).
        Returns it and the participant it replaced (same session), if any.

        Raises :class:`RoomNotFound`, :class:`RoomGone` (ended, expired, or past its
        ``--for`` lifetime for a newcomer: people already let in may reconnect),
        :class:`ParticipantRemoved`, :class:`RoomLocked`, :class:`RoomFull`.
        """
        room = self.get_room(room_id)
        if room is None:
            if self.is_gone(room_id):
                raise RoomGone("This meeting has ended.")
            raise RoomNotFound("This meeting link is not valid or has expired.")
        host = self.is_host_token(room, host_token) or session in room.host_sessions
        now = self._clock()
        if not host and session in room.banned_sessions:
            raise ParticipantRemoved("The host removed you from this meeting.")
        # Someone already let in who reconnects (a network blip, a reload) is not a newcomer.
        returning = host or session in room.admitted_sessions
        if not returning and room.join_deadline is not None and now >= room.join_deadline:
            raise RoomGone(LINK_EXPIRED)
        replaced = room.find_session(session)
        if replaced is not None:
            self._drop(room, replaced)
        if not returning and room.locked:
            raise RoomLocked("The host has locked this meeting.")
        if len(room.participants) >= room.max_participants:
            raise RoomFull(f"This meeting is full ({room.max_participants} people).")
        participant = Participant(
            id=self._make_participant_id(),
            name=clean_text(name, self.limits.name_max_length) or "Guest",
            session=session,
            joined_at=now,
            host=host,
            muted_by_host=session in room.muted_sessions,
            hand_raised_at=room.raised_hands.get(session),  # kept across a reconnect
        )
        if room.lobby and not returning:
            if len(room.waiting) >= room.max_participants:
                raise RoomFull("The lobby of this meeting is full; try again later.")
            room.waiting[participant.id] = participant
            self._notify("participant_waiting", room, participant)
        else:
            self._enter(room, participant)
        return participant, replaced

    def admit(self, room: Room, participant_id: str) -> Participant | None:
        """Let someone in from the lobby. None if they are no longer waiting."""
        participant = room.waiting.get(participant_id)
        if participant is None:
            return None
        if len(room.participants) >= room.max_participants:
            raise RoomFull(f"This meeting is full ({room.max_participants} people).")
        del room.waiting[participant_id]
        participant.joined_at = self._clock()
        self._notify("waiting_resolved", room, participant, True)
        self._enter(room, participant)
        return participant

    def deny(self, room: Room, participant_id: str) -> Participant | None:
        """Turn someone away from the lobby; their session cannot knock again."""
        participant = room.waiting.pop(participant_id, None)
        if participant is not None:
            room.banned_sessions.add(participant.session)
            self._save(room)
            self._notify("waiting_resolved", room, participant, False)
        return participant

    def remove(self, room: Room, participant_id: str) -> Participant | None:
        """A host removes someone: they leave, and their session cannot come straight back."""
        participant = room.participants.get(participant_id) or room.waiting.get(participant_id)
        if participant is None:
            return None
        room.banned_sessions.add(participant.session)
        room.admitted_sessions.discard(participant.session)
        room.host_sessions.discard(participant.session)
        self._save(room)
        self._drop(room, participant)
        return participant

    def set_muted(self, room: Room, participant_id: str, muted: bool) -> Participant | None:
        """A host stops (or resumes) forwarding someone's audio; it sticks across reconnects."""
        participant = room.participants.get(participant_id)
        if participant is not None:
            participant.muted_by_host = muted
            if muted:
                room.muted_sessions.add(participant.session)
            else:
                room.muted_sessions.discard(participant.session)
            self._save(room)
        return participant

    def set_locked(self, room: Room, locked: bool) -> None:
        """Lock or unlock the room. Locking also empties the lobby: nobody new gets in, not even
        someone who knocked before the lock (each knocker hears ``waiting_resolved``, not
        admitted, and may knock again once the room is unlocked; nobody is barred)."""
        room.locked = locked
        self._save(room)
        if locked:
            for participant in list(room.waiting.values()):
                del room.waiting[participant.id]
                self._notify("waiting_resolved", room, participant, False)
        self._notify("room_changed", room)

    def set_lobby(self, room: Room, lobby: bool) -> None:
        room.lobby = lobby
        self._save(room)
        self._notify("room_changed", room)

    def make_host(self, room: Room, participant_id: str) -> Participant | None:
        """Give host rights to a participant (hosts can share them)."""
        participant = room.participants.get(participant_id)
        if participant is not None:
            participant.host = True
            room.host_sessions.add(participant.session)
            self._save(room)
        return participant

    def end(self, room: Room) -> None:
        """A host ends the meeting for everyone; the link then answers 410 for good."""
        if self._by_id.get(room.id) is room:
            if room.empty_since is None:
                room.empty_since = self._clock()
            self._close(room, "ended")

    def leave(self, room: Room, participant_id: str) -> Participant | None:
        """Remove a participant (or a knocker who gave up); the room starts its grace period when
        it becomes empty."""
        participant = room.participants.get(participant_id) or room.waiting.get(participant_id)
        if participant is None:
            return None
        self._drop(room, participant)
        return participant

    def sweep(self) -> list[Room]:
        """Close every room that is due: never joined past its TTL, or empty past the grace.
        Forget tombstones past their time."""
        now = self._clock()
        due = [room for room in list(self._by_id.values()) if self._is_due(room, now)]
        for room in due:
            self._close(room, "expired")
        self._tombstones.forget_due(now)
        writer = self._writer
        if writer is not None:
            writer.submit(lambda: writer.store.forget_tombstones(now))
        return due

    def close_all(self, reason: str) -> None:
        """Close every room (server shutdown): listeners hear ``room_closed`` for each."""
        for room in list(self._by_id.values()):
            self._close(room, reason)

    def rooms(self) -> list[Room]:
        return list(self._by_id.values())

    def _enter(self, room: Room, participant: Participant) -> None:
        room.participants[participant.id] = participant
        room.admitted_sessions.add(participant.session)
        if participant.host:
            room.host_sessions.add(participant.session)
        if room.first_joined_at is None:
            room.first_joined_at = participant.joined_at
        room.sessions_seen.add(participant.session)
        room.ever_joined = True
        room.empty_since = None
        self._save(room)
        self._notify("participant_joined", room, participant)

    def _drop(self, room: Room, participant: Participant) -> None:
        if room.waiting.pop(participant.id, None) is not None:
            self._notify("waiting_resolved", room, participant, False)
            return
        if room.participants.pop(participant.id, None) is None:
            return
        if not room.participants:
            room.empty_since = self._clock()
            self._save(room)
        self._notify("participant_left", room, participant)

    def _is_due(self, room: Room, now: float) -> bool:
        if room.participants:
            return False
        if not room.ever_joined:
            return now >= room.expires_at
        assert room.empty_since is not None
        return now >= room.empty_since + self.limits.empty_grace_seconds

    def _close(self, room: Room, reason: str) -> None:
        self._by_id.pop(room.id, None)
        writer = self._writer
        if writer is not None:
            room_id = room.id
            writer.submit(lambda: writer.store.delete_room(room_id))
        if reason != "server_shutdown":
            # Only a hash of the id: its link keeps answering 410 "ended" and is never reused.
            until = self._clock() + self.limits.tombstone_seconds
            key = self._tombstones.bury(room.id, until)
            if writer is not None:
                writer.submit(lambda: writer.store.bury(key, until))
        self._notify("room_closed", room, reason)

    def _notify(self, event: str, room: Room, *details: object) -> None:
        for listener in self._listeners:
            handler = getattr(listener, event, None)
            if handler is None:
                continue
            try:
                handler(room, *details)
            except Exception as error:
                # A chat adapter's bug must not break joining or leaving a call. Type only:
                # a traceback could carry names or links, which stay out of logs.
                logger.error("room event listener failed on %s: %s", event, type(error).__name__)


def iso_utc(timestamp: float) -> str:
    """A clock time as ISO 8601 in UTC, e.g. ``2026-11-27T06:00:00Z``."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
