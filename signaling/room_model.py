"""The room model: rooms, the people in them, and what the service tells its listeners (where
rooms are kept across restarts: :mod:`signaling.room_store`). Plain data: :class:`~signaling.rooms.RoomService` is what changes it."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from .limits import TokenBucket

__all__ = [
    "ROOM_ID_PATTERN",
    "Clock",
    "Participant",
    "Room",
    "RoomEvents",
    "RoomLimits",
    "new_participant_id",
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
    host: bool = False
    """Whether this participant has host rights (admit, lock, remove, mute, end)."""
    muted_by_host: bool = False
    """A host stopped forwarding this participant's audio (until a host lets it through again)."""
    screen: bool = False
    """Whether this participant shares a screen now (:mod:`signaling.screen_share`)."""
    hand_raised_at: int | None = None
    """When this participant raised their hand (milliseconds since the epoch), or None."""


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
    host_keys: list[bytes] = field(default_factory=list)
    """SHA-256 of each host token issued for the room (the tokens themselves are never kept)."""
    lobby: bool = False
    """Newcomers wait until a host admits them."""
    locked: bool = False
    """Nobody new gets in (not even through the lobby)."""
    waiting: dict[str, Participant] = field(default_factory=dict)
    """People in the lobby, by participant id."""
    banned_sessions: set[str] = field(default_factory=set)
    """Sessions a host removed or denied: they cannot come straight back."""
    admitted_sessions: set[str] = field(default_factory=set)
    """Sessions that have been in the call: reconnecting, they skip the lobby and the lock."""
    host_sessions: set[str] = field(default_factory=set)
    """Sessions with host rights (by token or granted): they keep them across reconnects."""
    muted_sessions: set[str] = field(default_factory=set)
    """Sessions a host muted: reconnecting does not unmute them."""
    raised_hands: dict[str, int] = field(default_factory=dict)
    """When each session raised its hand (ms since the epoch): reconnecting keeps it raised,
    leaving lowers it (:mod:`signaling.hands`). In memory only."""
    chat_allowance: dict[str, TokenBucket] = field(default_factory=dict)
    """Each session's chat rate limit (:mod:`signaling.chat`): reconnecting does not refill it.
    In memory only, gone with the room."""
    join_deadline: float | None = None
    """After this clock time the link admits nobody new (``/meetnow --for 2h``)."""

    @property
    def people_count(self) -> int:
        """How many different people have been in the call."""
        return len(self.sessions_seen)

    def find_session(self, session: str) -> Participant | None:
        for participant in [*self.participants.values(), *self.waiting.values()]:
            if secrets.compare_digest(participant.session, session):
                return participant
        return None

    def hosts(self) -> list[Participant]:
        return [p for p in self.participants.values() if p.host]


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
        """The room closed and is gone: ``expired`` (never used, past its lifetime, or empty past
        its grace period), ``ended`` (a host ended it for everyone) or ``server_shutdown``."""

    def participant_waiting(self, room: Room, participant: Participant) -> None:
        """Someone knocked: they wait in the lobby for a host (in the call or in the chat)."""

    def waiting_resolved(self, room: Room, participant: Participant, admitted: bool) -> None:
        """A knock was answered (or the knocker gave up: ``admitted`` False)."""

    def room_changed(self, room: Room) -> None:
        """The room's lock or lobby setting changed."""


@dataclass(frozen=True)
class RoomLimits:
    """The service's limits, usually taken from :class:`~signaling.settings.Settings`."""

    max_participants: int = 20
    """Participants in one room at once (what one relay core holds; see Settings)."""
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
    tombstone_seconds: float = 7 * 24 * 3600
    """How long an ended or expired room's id keeps answering 410 (only a hash of it is kept)."""
