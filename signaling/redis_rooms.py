"""The room service of one node among several sharing Redis (``MEETNOW_REDIS_URL``).

Each node keeps in memory only the rooms it is working with: those with people on this node, and
copies it fetched from Redis for a request (:meth:`SharedRoomService.fetch`, called before a room
is looked up). A copy with nobody here is refreshed from Redis at every lookup, so a room created,
locked or ended on another node reads the same here; an idle copy is dropped from memory, never
closed, since the room may be in use elsewhere.

Who closes a room: the node where it was created (a room nobody joined expires at its TTL; Redis
also expires its key by itself) or where its last participant left (the empty grace). Before
closing, the node reads the room back from Redis and closes it only if the stored room is due as
well: another node may have let people in meanwhile.

Which node runs a room's call is decided by claims (:mod:`signaling.redis_registry`); a
websocket landing elsewhere is forwarded there (:mod:`signaling.redis_proxy`). A node told to
stop drains (:meth:`SharedRoomService.drain`): it lets go of its claims before closing its
pages' websockets with 1012, so they reconnect and another node claims their rooms.

A Redis that restarted empty has forgotten the calls going on: the heartbeat notices (this
node's own key is gone), claims this node's rooms again and :meth:`SharedRoomService.write_back`
writes back the rooms with people here and the chat card references this node wrote or read for
them (kept in memory for that), never over a newer record nor for an ended room.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from redis.exceptions import RedisError

from .errors import TemporarilyUnavailable
from .limits import ServerLimits
from .redis_bus import Envelope, NodeBus
from .redis_knock import KnockRelay
from .redis_limits import RedisKeyedLimiter
from .redis_registry import NodeRegistry
from .redis_restore import RoomRestorer
from .redis_store import RedisRoomStore
from .room_model import ROOM_ID_PATTERN, Participant, Room, RoomLimits
from .room_store import record_of, refresh_room, room_from
from .rooms import RoomService
from .tasks import spawn
from .tombstones import secret_key

__all__ = [
    "BUS_START_SECONDS",
    "DRAINING",
    "IDLE_COPY_SECONDS",
    "UNAVAILABLE",
    "SharedRoomService",
]

logger = logging.getLogger(__name__)

IDLE_COPY_SECONDS = 120.0
"""How long a fetched copy with nobody on this node stays in memory (longer than a websocket may
wait before ``join``: a page that loaded the room still finds it)."""


BUS_START_SECONDS = 5.0
UNAVAILABLE = "Meetings are temporarily unavailable here; try again in a few seconds."
DRAINING = "This server is stopping; reconnect to be moved to another one."


class SharedRoomService(RoomService):
    """:class:`~signaling.rooms.RoomService` over a :class:`RedisRoomStore` other nodes share."""

    def __init__(
        self,
        limits: RoomLimits | None = None,
        *,
        store: RedisRoomStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(limits, store=store, clock=clock)
        self.shared = store
        self._responsible: set[str] = set()
        """Rooms this node closes when they are due: created here, or last left here."""
        self._fetched_at: dict[str, float] = {}
        self._checks: set[asyncio.Task[None]] = set()
        """Closings waiting for Redis to agree (:meth:`settle` waits for them)."""
        self._unpublished: set[str] = set()
        """Rooms made here that :meth:`publish` has not yet seen in Redis."""
        self._chat_kept: dict[str, dict[str, str]] = {}
        """The chat values (card references) this node wrote or read, by room it holds, to
        write back into a Redis that lost them."""
        self.restorer = RoomRestorer(store.client, store.prefix)
        self.registry = NodeRegistry(
            store.client,
            load=self._load,
            rooms_here=self._rooms_here,
            prefix=store.prefix,
            on_forgotten=self.write_back,
        )
        """This node's heartbeat and the claims of the rooms with people here."""
        self.bus: NodeBus | None = None
        """This node's inbox from other nodes (forwarded signaling), once :meth:`listen`."""
        self.draining = False
        """Set by :meth:`drain` (the node was told to stop): it claims no room any more."""
        self.knocks: KnockRelay | None = None
        """Admit / Deny answered on the room's node from any node (set with the forwarder)."""

    def listen(
        self, on_message: Callable[[Envelope], None], on_resubscribed: Callable[[], None]
    ) -> NodeBus:
        """Give this node an inbox on the bus (subscribed at :meth:`open`)."""
        self.bus = NodeBus(
            self.shared.client,
            self.registry.node_id,
            on_message=on_message,
            on_resubscribed=on_resubscribed,
            prefix=self.shared.prefix,
        )
        return self.bus

    def _load(self) -> int:
        return sum(len(room.participants) for room in self._by_id.values())

    def _rooms_here(self) -> list[str]:
        return [room.id for room in self._by_id.values() if room.participants or room.waiting]

    @classmethod
    def from_url(
        cls, url: str, limits: RoomLimits | None = None, *, clock: Callable[[], float] = time.time
    ) -> SharedRoomService:
        """The service of a node on the Redis at ``url`` (``MEETNOW_REDIS_URL``)."""
        return cls(limits, store=RedisRoomStore.from_url(url), clock=clock)

    def share_limits(self, limits: ServerLimits) -> None:
        """Count ``limits``' rooms created and unknown links looked up per address across every
        node on this Redis, with the same buckets (a client spread over nodes gets no more)."""
        client, prefix = self.shared.client, self.shared.prefix
        limits.share(
            RedisKeyedLimiter(
                client,
                "rooms_per_ip",
                limits.rooms_per_ip.bucket,
                prefix=prefix,
                fallback=limits.rooms_per_ip,
            ),
            RedisKeyedLimiter(
                client,
                "unknown_lookups",
                limits.unknown_lookups.bucket,
                prefix=prefix,
                fallback=limits.unknown_lookups,
            ),
        )

    async def open(self) -> None:
        """Start writing and the node's heartbeat; rooms are read from Redis when asked for,
        not all at start-up."""
        if self._writer is not None:
            self._writer.start()
        if self.bus is not None:
            self.bus.start()
            # Listening before the heartbeat says this node is alive (a miss only makes a page
            # reconnect: never wait long for a Redis that is away).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.bus.subscribed.wait(), BUS_START_SECONDS)
        self.registry.start()

    async def close(self) -> None:
        """Stop the heartbeat (letting go of this node's claims) and the bus, then write and
        close."""
        await self.registry.stop()
        if self.bus is not None:
            await self.bus.stop()
        await super().close()

    async def drain(self) -> None:
        """This node was told to stop: from now on it claims no room, and it leaves the list of
        live nodes and lets go of its claims at once (not at their expiry), so the pages it
        then closes with 1012 find their rooms free on another node when they reconnect."""
        self.draining = True
        await self.registry.stop()

    async def claim(self, room_id: str) -> str | None:
        """Claim ``room_id`` for this node (a participant arrives here) unless a live node holds
        it; returns that node's id, None when the room is this node's. Draining, it refuses
        (:class:`TemporarilyUnavailable`: the page tries again, through another node)."""
        if self.draining:
            raise TemporarilyUnavailable(DRAINING)
        try:
            holder = await self.registry.claim(room_id)
        except RedisError:
            raise TemporarilyUnavailable(UNAVAILABLE) from None
        return None if holder == self.registry.node_id else holder

    async def fetch(self, room_id: str) -> None:
        """Bring this node's copy of ``room_id`` up to date from Redis (unless people are in it
        here: then this node's copy is the room)."""
        if not ROOM_ID_PATTERN.fullmatch(room_id):
            return
        local = self._by_id.get(room_id)
        if local is not None and (local.participants or local.waiting):
            return
        await self.flush()  # this node's own writes first: what it reads back includes them
        try:
            record = await self.shared.find_room(room_id)
            until = None if record else await self.shared.buried_until(secret_key(room_id))
        except RedisError:
            raise TemporarilyUnavailable(UNAVAILABLE) from None
        if record is None:
            self._forget(room_id)  # closed elsewhere; that node told its listeners
            if until is not None:
                self._tombstones.restore({secret_key(room_id): until})
            return
        current = self._by_id.get(room_id)
        if current is None:
            room = room_from(record, self._clock())
            room.empty_since = record.empty_since  # people may be in it on another node
            self._by_id[room_id] = room
        elif not (current.participants or current.waiting):
            # Updated, never replaced: websockets arriving together (pages reconnecting after a
            # drain) each looked the room up; a new object per fetch split them into rooms of
            # their own that never saw each other.
            refresh_room(current, record, self._clock())
            current.empty_since = record.empty_since
        # else people arrived here while Redis answered: this node's copy is the room.
        self._fetched_at[room_id] = self._clock()

    async def publish(self) -> None:
        """Wait until this node's changes are in Redis (a room made here opens on every node
        as soon as its creator has the link). Raises :class:`TemporarilyUnavailable` if a room
        made here since the last call is not there (Redis away: its link would open nowhere
        else, so it is not handed out)."""
        await self.flush()
        made, self._unpublished = self._unpublished, set()
        for room_id in sorted(made):
            if not await self._in_redis(room_id):
                self._forget(room_id)
                raise TemporarilyUnavailable(UNAVAILABLE)

    async def _in_redis(self, room_id: str) -> bool:
        """Whether the room made here is in Redis, writing it once more if it is not: the
        queued write may have met a dropped connection that the next command no longer
        meets (a lone failed write must not turn a room away while Redis is there)."""
        for attempt in range(2):
            try:
                if await self.shared.find_room(room_id) is not None:
                    return True
                room = self._by_id.get(room_id)
                if attempt or room is None:
                    return False
                await self.shared.save_room(record_of(room))
            except RedisError:
                if attempt:
                    return False
        return False

    def create_room(
        self,
        topic: str | None = None,
        *,
        origin: str | None = None,
        lobby: bool = False,
        lifetime_seconds: float | None = None,
    ) -> Room:
        room = super().create_room(
            topic, origin=origin, lobby=lobby, lifetime_seconds=lifetime_seconds
        )
        self._responsible.add(room.id)
        self._unpublished.add(room.id)
        return room

    def _enter(self, room: Room, participant: Participant) -> None:
        self._responsible.add(room.id)
        super()._enter(room, participant)

    def _is_due(self, room: Room, now: float) -> bool:
        # Never closed on the spot (a lookup closes due rooms synchronously): only the sweep
        # closes, once Redis agrees (:meth:`_close_if_still_due`).
        return False

    def _due_here(self, room: Room, now: float) -> bool:
        """Whether this node should close ``room`` as far as its own copy tells."""
        if room.id not in self._responsible or room.participants or room.waiting:
            return False
        if room.empty_since is None and room.ever_joined:
            return False  # people are in it on another node
        return super()._is_due(room, now)

    def sweep(self) -> list[Room]:
        """Drop idle copies; close what this node is responsible for only after Redis agrees
        (asynchronously: the stored room may have changed on another node)."""
        now = self._clock()
        for room in list(self._by_id.values()):
            idle = not room.participants and not room.waiting
            if idle and room.id not in self._responsible:
                if now - self._fetched_at.get(room.id, now) > IDLE_COPY_SECONDS:
                    self._forget(room.id)
            elif self._due_here(room, now):
                check = spawn(self._close_if_still_due(room), what="shared room check")
                self._checks.add(check)
                check.add_done_callback(self._checks.discard)
        self._tombstones.forget_due(now)
        self._chat_kept = {k: v for k, v in self._chat_kept.items() if k in self._by_id}
        writer = self._writer
        if writer is not None:
            writer.submit(lambda: writer.store.forget_tombstones(now))
        return []

    async def settle(self) -> None:
        """Wait until the closings the last sweeps started are decided and written."""
        while self._checks:
            await asyncio.gather(*list(self._checks), return_exceptions=True)
        await self.flush()

    async def _close_if_still_due(self, room: Room) -> None:
        try:
            await self.flush()
            record = await self.shared.find_room(room.id)
            buried = None if record else await self.shared.buried_until(secret_key(room.id))
        except Exception as error:  # Redis away: try again at the next sweep
            logger.warning("shared room check failed: %s", type(error).__name__)
            return
        if self._by_id.get(room.id) is not room or room.participants or room.waiting:
            return
        if record is not None and (
            record.empty_since != room.empty_since or record.ever_joined != room.ever_joined
        ):
            # Changed on another node: take its state, and leave the closing to that node.
            self._responsible.discard(room.id)
            await self.fetch(room.id)
            return
        if record is None and buried is not None:
            # Ended on another node (its host, its last leave), which told its listeners: a
            # second ``room_closed`` here would end its chat card a second time.
            self._forget(room.id)
            self._tombstones.restore({secret_key(room.id): buried})
            return
        self._responsible.discard(room.id)
        self._close(room, "expired")

    def remember(self, room_id: str, name: str, value: str) -> None:
        if room_id in self._by_id:
            self._chat_kept.setdefault(room_id, {})[name] = value
        super().remember(room_id, name, value)

    async def remembered(self, name: str) -> dict[str, str]:
        values = await super().remembered(name)
        for room_id, value in values.items():
            self._chat_kept.setdefault(room_id, {})[name] = value
        return values

    async def write_back(self) -> None:
        """Redis forgot this node (restarted empty, most likely): write back each room with
        people or a lobby here whose record is missing, with its kept chat values. Done by the
        writer, in order with this node's other writes: a room that closes meanwhile is skipped
        (its deletion and tombstone come after). Raises ``RedisError`` if Redis is away again
        (the heartbeat calls again)."""
        writer = self._writer
        if writer is None or not self._rooms_here():
            return
        failures: list[RedisError] = []

        async def write_back_rooms() -> None:
            restored = 0
            try:
                for room in list(self._by_id.values()):
                    # Checked at each step: a room may close or empty while another is written.
                    if self._by_id.get(room.id) is room and (room.participants or room.waiting):
                        kept = dict(self._chat_kept.get(room.id, {}))
                        restored += await self.restorer.restore(record_of(room), kept)
            except RedisError as error:
                failures.append(error)
            if restored:
                logger.warning("Redis had lost %d room(s) with people here: written back", restored)

        writer.submit(write_back_rooms)
        await writer.flush()
        if failures:
            raise failures[0]

    def _forget(self, room_id: str) -> None:
        self._by_id.pop(room_id, None)
        self._chat_kept.pop(room_id, None)
        self._fetched_at.pop(room_id, None)
        self._responsible.discard(room_id)
