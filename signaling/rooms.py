"""The room service: create, look up, join, leave and expire rooms.

Rooms live behind a small :class:`RoomStore` interface (in memory by default). Clock and id source
are injected so tests can move time and predict nothing else. Chat adapters and the websocket layer
call this service; none of them keeps room state of its own.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from .errors import RoomFull, RoomNotFound, TooManyRooms

logger = logging.getLogger(__name__)

__all__ = [
    "ROOM_ID_PATTERN",
    "InMemoryRoomStore",
    "Participant",
    "Room",
    "RoomEvents",
    "RoomService",
    "RoomStore",
    "new_room_id",
]

ROOM_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{22}\Z")
"""128 random bits, URL-safe base64 without padding."""

Clock = Callable[[], float]


def new_room_id() -> str:
    """A fresh, unguessable room id: 128 bits from the OS's CSPRNG."""
    return secrets.token_urlsafe(16)


def new_participant_id() -> str:
    """Participant ids are only unique handles inside a room; 64 random bits are plenty."""
    return secrets.token_urlsafe(8)


@dataclass
class Participant:
    """Someone in a room."""

    id: str
    """Opaque id, shown to the other participants."""
    name: str
    """Display name as typed (trimmed and capped); untrusted text."""
    session: str
    """The client's random per-page session id: a rejoin with it replaces this participant."""
    joined_at: float
    """Clock time of the join."""
    audio: bool = True
    """Whether the microphone is on."""
    video: bool = True
    """Whether the camera is on."""


@dataclass
class Room:
    """A meeting room."""

    id: str
    """128-bit random id, the secret part of the link."""
    topic: str | None
    """Optional topic given at creation; untrusted text."""
    created_at: float
    """Clock time of creation."""
    expires_at: float
    """A room never joined closes at this clock time."""
    max_participants: int
    """Participant cap."""
    participants: dict[str, Participant] = field(default_factory=dict)
    """Everyone in the room now, by participant id."""
    ever_joined: bool = False
    """Whether anyone has joined yet; a joined room no longer expires on ``expires_at``."""
    empty_since: float | None = None
    """Clock time the last participant left, while the room is empty after having been used."""
    first_joined_at: float | None = None
    """Clock time of the first join (the start of the call, for chat cards)."""
    sessions_seen: set[str] = field(default_factory=set)
    """Every session that joined (a person reconnecting counts once); gone with the room."""
    origin: str | None = None
    """Which chat created it (``slack``, ``discord``) or None for the web page; adapters use it
    to pick up only their own rooms' events."""

    @property
    def people_count(self) -> int:
        """How many different people have been in the call."""
        return len(self.sessions_seen)

    def find_session(self, session: str) -> Participant | None:
        for participant in self.participants.values():
            if secrets.compare_digest(participant.session, session):
                return participant
        return None


class RoomStore(Protocol):
    """Where rooms are kept. The in-memory store is the default; a shared one can replace it."""

    def get(self, room_id: str) -> Room | None: ...
    def put(self, room: Room) -> None: ...
    def delete(self, room_id: str) -> None: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[Room]: ...


class InMemoryRoomStore:
    """Rooms in a dict: fast, private, and gone when the process ends."""

    def __init__(self) -> None:
        self._rooms: dict[str, Room] = {}

    def get(self, room_id: str) -> Room | None:
        return self._rooms.get(room_id)

    def put(self, room: Room) -> None:
        self._rooms[room.id] = room

    def delete(self, room_id: str) -> None:
        self._rooms.pop(room_id, None)

    def __len__(self) -> int:
        return len(self._rooms)

    def __iter__(self) -> Iterator[Room]:
        return iter(list(self._rooms.values()))


class RoomEvents(Protocol):
    """What the room service tells the rest of the server: the web server, and the chat adapters,
    which keep their call cards up to date from these three calls and nothing else. Listeners must
    return quickly (schedule any I/O); a listener's exception is logged and never reaches the
    room service or the other listeners."""

    def participant_joined(self, room: Room, participant: Participant) -> None:
        """Someone joined; ``room.participants`` already includes them."""

    def participant_left(self, room: Room, participant: Participant) -> None:
        """Someone left; ``room.participants`` no longer includes them."""

    def room_closed(self, room: Room, reason: str) -> None:
        """The room closed (``expired``: never used, or empty past its grace period) and is gone."""


@dataclass(frozen=True)
class RoomLimits:
    """The service's limits, usually taken from :class:`~signaling.settings.Settings`."""

    max_participants: int = 50
    """Participants in one room at once."""
    unused_ttl_seconds: float = 24 * 3600
    """Lifetime of a room nobody joined."""
    empty_grace_seconds: float = 60.0
    """How long a room stays open after the last person left."""
    max_rooms: int = 10_000
    """Rooms open at once."""
    topic_max_length: int = 200
    """Longest topic kept (longer ones are cut)."""
    name_max_length: int = 64
    """Longest display name kept (longer ones are cut)."""


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
        self._store: RoomStore = store if store is not None else InMemoryRoomStore()
        self._clock = clock
        self._make_room_id = make_room_id
        self._make_participant_id = make_participant_id
        self._listeners: list[RoomEvents] = []

    def add_listener(self, listener: RoomEvents) -> None:
        """Be told of every join, leave and room end."""
        self._listeners.append(listener)

    def now(self) -> float:
        return self._clock()

    def create_room(self, topic: str | None = None, *, origin: str | None = None) -> Room:
        """Open a new room. Raises :class:`TooManyRooms` at the server's cap."""
        # Sweeping scans every room: only when at the cap (the server also sweeps periodically).
        if len(self._store) >= self.limits.max_rooms:
            self.sweep()
        if len(self._store) >= self.limits.max_rooms:
            raise TooManyRooms("This server has too many open rooms; try again later.")
        topic = clean_text(topic, self.limits.topic_max_length) if topic else None
        now = self._clock()
        room_id = self._make_room_id()
        while self._store.get(room_id) is not None:  # only an injected id source can collide
            room_id = self._make_room_id()
        room = Room(
            id=room_id,
            topic=topic or None,
            created_at=now,
            expires_at=now + self.limits.unused_ttl_seconds,
            max_participants=self.limits.max_participants,
            origin=origin,
        )
        self._store.put(room)
        return room

    def get_room(self, room_id: str) -> Room | None:
        """The open room with this id, or None for a malformed, unknown, expired or closed one."""
        if not ROOM_ID_PATTERN.fullmatch(room_id):
            return None
        room = self._store.get(room_id)
        if room is None:
            return None
        if self._is_due(room, self._clock()):
            self._close(room, "expired")
            return None
        return room

    def join(self, room_id: str, name: str, session: str) -> tuple[Participant, Participant | None]:
        """Add a participant. Returns it and the participant it replaced (same session), if any."""
        room = self.get_room(room_id)
        if room is None:
            raise RoomNotFound("This meeting link is not valid or has expired.")
        replaced = room.find_session(session)
        if replaced is not None:
            self.leave(room, replaced.id)
        if len(room.participants) >= room.max_participants:
            raise RoomFull(f"This meeting is full ({room.max_participants} people).")
        participant = Participant(
            id=self._make_participant_id(),
            name=clean_text(name, self.limits.name_max_length) or "Guest",
            session=session,
            joined_at=self._clock(),
        )
        room.participants[participant.id] = participant
        if room.first_joined_at is None:
            room.first_joined_at = participant.joined_at
        room.sessions_seen.add(session)
        room.ever_joined = True
        room.empty_since = None
        self._notify("participant_joined", room, participant)
        return participant, replaced

    def leave(self, room: Room, participant_id: str) -> Participant | None:
        """Remove a participant; the room starts its grace period when it becomes empty."""
        participant = room.participants.pop(participant_id, None)
        if participant is None:
            return None
        if not room.participants:
            room.empty_since = self._clock()
        self._notify("participant_left", room, participant)
        return participant

    def sweep(self) -> list[Room]:
        """Close every room that is due: never joined past its TTL, or empty past the grace."""
        now = self._clock()
        due = [room for room in self._store if self._is_due(room, now)]
        for room in due:
            self._close(room, "expired")
        return due

    def close_all(self, reason: str) -> None:
        """Close every room (server shutdown): listeners hear ``room_closed`` for each."""
        for room in list(self._store):
            self._close(room, reason)

    def rooms(self) -> list[Room]:
        return list(self._store)

    def _is_due(self, room: Room, now: float) -> bool:
        if room.participants:
            return False
        if not room.ever_joined:
            return now >= room.expires_at
        assert room.empty_since is not None
        return now >= room.empty_since + self.limits.empty_grace_seconds

    def _close(self, room: Room, reason: str) -> None:
        self._store.delete(room.id)
        self._notify("room_closed", room, reason)

    def _notify(self, event: str, room: Room, detail: Participant | str) -> None:
        for listener in self._listeners:
            try:
                getattr(listener, event)(room, detail)
            except Exception:
                # A chat adapter's bug must not break joining or leaving a call.
                logger.exception("room event listener failed on %s", event)


def clean_text(text: str | None, max_length: int) -> str:
    """Trim, fold control characters to spaces, drop invisible format characters (bidi overrides,
    zero-width joiners: they let a name pose as another) and cap the length of user-typed text."""
    if not text:
        return ""
    folded = "".join(
        " " if unicodedata.category(ch) == "Cc" else ch
        for ch in text
        if unicodedata.category(ch) != "Cf"
    )
    return " ".join(folded.split())[:max_length].strip()


def iso_utc(timestamp: float) -> str:
    """A clock time as ISO 8601 in UTC, e.g. ``2026-11-27T06:00:00Z``."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
