"""Where rooms are kept across restarts: the :class:`RoomStore` interface, what it stores
(:class:`RoomRecord`), and the writer that feeds it from the room service in order.

The room service keeps the rooms of this process in memory (its working set) and writes what must
survive a restart through a store: SQLite under ``MEETNOW_DATA_DIR`` by default
(:mod:`signaling.sqlite_store`), or nothing at all (``MEETNOW_STORE=memory``). The interface is
async and narrow, in typed records, so a shared store (Redis) can sit behind it as well.

What is stored of a room is only what a restart needs: its settings (topic, lobby, lock, the
``--for`` deadline, the participant cap, hashes of its host tokens) and the sessions it knows
(admitted, hosts, host-muted, barred, seen). Never a host token, never who is connected now
(after a restart nobody is: pages reconnect and are let straight back in by their session).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from .errors import MeetnowError
from .room_model import Room

__all__ = [
    "RoomRecord",
    "RoomStore",
    "StoreError",
    "StoreWriter",
    "StoredState",
    "decode_record",
    "encode_record",
    "record_of",
    "refresh_room",
    "room_from",
]

logger = logging.getLogger(__name__)


class StoreError(MeetnowError):
    """The room store cannot be opened or used (unwritable directory, corrupt database). Its
    message names the setting to check and never replaces anything by itself."""


@dataclass(frozen=True)
class RoomRecord:
    """What survives a restart of one open room."""

    id: str
    topic: str | None
    created_at: float
    expires_at: float
    max_participants: int
    origin: str | None
    lobby: bool
    locked: bool
    join_deadline: float | None
    ever_joined: bool
    empty_since: float | None
    first_joined_at: float | None
    host_keys: tuple[bytes, ...] = ()
    """SHA-256 of each host token (never the tokens)."""
    admitted_sessions: frozenset[str] = frozenset()
    host_sessions: frozenset[str] = frozenset()
    muted_sessions: frozenset[str] = frozenset()
    banned_sessions: frozenset[str] = frozenset()
    sessions_seen: frozenset[str] = frozenset()


@dataclass(frozen=True)
class StoredState:
    """Everything a store holds, as read at start-up."""

    rooms: list[RoomRecord] = field(default_factory=list)
    tombstones: dict[bytes, float] = field(default_factory=dict)
    """SHA-256 of an ended room's id -> until when it answers 410."""


def record_of(room: Room) -> RoomRecord:
    """A snapshot of ``room``'s durable part (taken at once: later changes are not in it)."""
    return RoomRecord(
        id=room.id,
        topic=room.topic,
        created_at=room.created_at,
        expires_at=room.expires_at,
        max_participants=room.max_participants,
        origin=room.origin,
        lobby=room.lobby,
        locked=room.locked,
        join_deadline=room.join_deadline,
        ever_joined=room.ever_joined,
        empty_since=room.empty_since,
        first_joined_at=room.first_joined_at,
        host_keys=tuple(room.host_keys),
        admitted_sessions=frozenset(room.admitted_sessions),
        host_sessions=frozenset(room.host_sessions),
        muted_sessions=frozenset(room.muted_sessions),
        banned_sessions=frozenset(room.banned_sessions),
        sessions_seen=frozenset(room.sessions_seen),
    )


def room_from(record: RoomRecord, now: float) -> Room:
    """The room a record describes, as it is right after a restart: nobody connected. A room
    people were in when the server stopped starts its empty grace period ``now``, so their
    pages have the whole grace period to reconnect."""
    empty_since = record.empty_since
    if record.ever_joined and empty_since is None:
        empty_since = now
    return Room(
        id=record.id,
        topic=record.topic,
        created_at=record.created_at,
        expires_at=record.expires_at,
        max_participants=record.max_participants,
        origin=record.origin,
        lobby=record.lobby,
        locked=record.locked,
        join_deadline=record.join_deadline,
        ever_joined=record.ever_joined,
        empty_since=empty_since,
        first_joined_at=record.first_joined_at,
        host_keys=list(record.host_keys),
        admitted_sessions=set(record.admitted_sessions),
        host_sessions=set(record.host_sessions),
        muted_sessions=set(record.muted_sessions),
        banned_sessions=set(record.banned_sessions),
        sessions_seen=set(record.sessions_seen),
    )


def refresh_room(room: Room, record: RoomRecord, now: float) -> None:
    """Bring ``room`` up to date with ``record`` in place: what a store keeps is replaced, what
    lives only in memory (people, lobby, hands) is left alone. One object per room id: a
    connection that looked the room up a moment ago must not hold a copy others no longer see."""
    fresh = room_from(record, now)
    for name in (f.name for f in fields(RoomRecord) if f.name != "id"):
        setattr(room, name, getattr(fresh, name))


def encode_record(record: RoomRecord) -> str:
    """A record as compact JSON (host keys in hex, session sets sorted), as both stores keep it."""
    data: dict[str, Any] = {
        "topic": record.topic,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "max_participants": record.max_participants,
        "origin": record.origin,
        "lobby": record.lobby,
        "locked": record.locked,
        "join_deadline": record.join_deadline,
        "ever_joined": record.ever_joined,
        "empty_since": record.empty_since,
        "first_joined_at": record.first_joined_at,
        "host_keys": [key.hex() for key in record.host_keys],
        "admitted_sessions": sorted(record.admitted_sessions),
        "host_sessions": sorted(record.host_sessions),
        "muted_sessions": sorted(record.muted_sessions),
        "banned_sessions": sorted(record.banned_sessions),
        "sessions_seen": sorted(record.sessions_seen),
    }
    return json.dumps(data, separators=(",", ":"))


def decode_record(room_id: str, text: str) -> RoomRecord:
    """The record :func:`encode_record` wrote."""
    data = json.loads(text)
    return RoomRecord(
        id=room_id,
        topic=data["topic"],
        created_at=float(data["created_at"]),
        expires_at=float(data["expires_at"]),
        max_participants=int(data["max_participants"]),
        origin=data["origin"],
        lobby=bool(data["lobby"]),
        locked=bool(data["locked"]),
        join_deadline=data["join_deadline"],
        ever_joined=bool(data["ever_joined"]),
        empty_since=data["empty_since"],
        first_joined_at=data["first_joined_at"],
        host_keys=tuple(bytes.fromhex(key) for key in data["host_keys"]),
        admitted_sessions=frozenset(data["admitted_sessions"]),
        host_sessions=frozenset(data["host_sessions"]),
        muted_sessions=frozenset(data["muted_sessions"]),
        banned_sessions=frozenset(data["banned_sessions"]),
        sessions_seen=frozenset(data["sessions_seen"]),
    )


class RoomStore(Protocol):
    """Durable rooms, tombstones and chat card references. Every method may do I/O; the room
    service calls them from one writer task, in the order its changes happened."""

    async def load(self) -> StoredState:
        """Everything stored (at start-up, before the server answers anyone)."""
        ...

    async def save_room(self, record: RoomRecord) -> None:
        """Create or replace a room."""
        ...

    async def delete_room(self, room_id: str) -> None:
        """Forget a closed room and everything kept under it (its chat values too)."""
        ...

    async def bury(self, key: bytes, until: float) -> None:
        """Keep a tombstone (SHA-256 of an ended room's id) until ``until``."""
        ...

    async def forget_tombstones(self, now: float) -> None:
        """Drop the tombstones whose time is past."""
        ...

    async def put_chat_value(self, room_id: str, name: str, value: str) -> None:
        """Keep ``value`` under (room, name) until the room is deleted."""
        ...

    async def chat_values(self, name: str) -> dict[str, str]:
        """Every value kept under ``name``, by room id."""
        ...

    async def close(self) -> None:
        """Finish and release the store."""
        ...


Operation = Callable[[], Awaitable[None]]


class StoreWriter:
    """Runs the room service's store writes one at a time, in order, off its call path.

    The room service is synchronous (a join is decided without waiting on I/O); each change
    queues an operation with a snapshot of what to write, and one task works through the queue.
    A failed write is logged (type only) and the next one runs: the call goes on, and the next
    change of the same room writes it whole again."""

    def __init__(self, store: RoomStore) -> None:
        self.store = store
        self._queue: deque[Operation] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def submit(self, operation: Operation) -> None:
        self._queue.append(operation)
        self._idle.clear()
        self._wake.set()

    async def flush(self) -> None:
        """Wait until every queued write is done."""
        if self._task is None:
            self.start()
        await self._idle.wait()

    async def stop(self) -> None:
        """Write what is queued, then stop (the store stays open: the caller closes it)."""
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            operation = self._queue.popleft()
            try:
                await operation()
            except Exception as error:
                logger.error("room store write failed: %s", type(error).__name__)
