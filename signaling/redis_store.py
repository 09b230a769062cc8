"""The shared room store: rooms, tombstones and chat card references in Redis
(``MEETNOW_REDIS_URL``), so several ``meetnow serve`` nodes see the same rooms.

Keys, all under one prefix (``meetnow:`` by default):

- ``room:{id}``: the room's record as JSON (:class:`~signaling.room_store.RoomRecord`); a room
  nobody ever joined also carries Redis's own expiry at its ``expires_at``, so it goes away even
  if every node that knew it died;
- ``rooms``: the set of open room ids;
- ``chat:{id}``: a hash of the chat values kept with room ``id`` (deleted with the room);
- ``tombstones``: a sorted set, SHA-256 of an ended room's id (hex) scored by until when it
  answers 410.

Every call is one round trip (or one Lua script) so two nodes never interleave halfway through
a write. Redis errors surface as ``redis.exceptions.RedisError`` (``ConnectionError`` when it is
unreachable): the caller decides what a lost Redis means.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .room_store import RoomRecord, StoredState, StoreError, decode_record, encode_record

__all__ = [
    "DEFAULT_PREFIX",
    "RELEASE_IF_HOLDER",
    "RENEW_IF_HOLDER",
    "RedisRoomStore",
    "connect",
    "text_of",
]

DEFAULT_PREFIX = "meetnow:"
VARIABLE = "MEETNOW_REDIS_URL"

# A chat value is only kept for a room that still exists: checked and written in one step, so a
# room deleted by another node in between takes nothing.
_PUT_CHAT_VALUE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
return 0
"""


# Keys one node holds at a time (room claims, leases), as Lua so the check and the change are one
# step: KEYS[1] the key; ARGV[1] the holder's node id (ARGV[2] a TTL in ms). Another node's key is
# never touched. Renew: 1 if renewed, 0 if not ours (any more). Release: deleted only if ours.
RENEW_IF_HOLDER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
return 0
"""
RELEASE_IF_HOLDER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def text_of(value: object) -> str:
    """A reply as text (the client decodes replies; bytes only from a client that does not)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(reply: object) -> list[tuple[object, float]]:
    """A ``WITHSCORES`` reply as (member, score) pairs (redis-py types it loosely)."""
    assert isinstance(reply, list)
    return [(member, float(score)) for member, score in reply]


def connect(url: str) -> aioredis.Redis:
    """A client for ``url`` (no connection is made yet). A malformed URL stops start-up with a
    message naming the setting."""
    try:
        return aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=2.0,
            socket_timeout=5.0,
            health_check_interval=10,
            # A pooled connection to a Redis that restarted fails its next command: try again
            # on a new connection (twice, briefly) before telling the caller Redis is away.
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
    except ValueError as error:
        raise StoreError(
            f"{VARIABLE}: not a Redis URL ({error}); expected e.g. redis://127.0.0.1:6379/0"
        ) from None


class RedisRoomStore:
    """:class:`~signaling.room_store.RoomStore` in Redis, shared by every node using the same
    URL and prefix. Beyond the interface, :meth:`find_room` and :meth:`buried_until` answer for
    one room, so a node can learn of a room another node created or ended."""

    def __init__(self, client: aioredis.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self._put_chat_value = client.register_script(_PUT_CHAT_VALUE)

    @classmethod
    def from_url(cls, url: str, prefix: str = DEFAULT_PREFIX) -> RedisRoomStore:
        return cls(connect(url), prefix)

    def _room_key(self, room_id: str) -> str:
        return f"{self.prefix}room:{room_id}"

    def _chat_key(self, room_id: str) -> str:
        return f"{self.prefix}chat:{room_id}"

    @property
    def _rooms_key(self) -> str:
        return f"{self.prefix}rooms"

    @property
    def _tombstones_key(self) -> str:
        return f"{self.prefix}tombstones"

    async def load(self) -> StoredState:
        room_ids = sorted(text_of(i) for i in await self.client.smembers(self._rooms_key))
        rooms: list[RoomRecord] = []
        if room_ids:
            texts = await self.client.mget([self._room_key(i) for i in room_ids])
            rooms = [
                decode_record(i, text_of(t)) for i, t in zip(room_ids, texts, strict=True) if t
            ]
            gone = [i for i, t in zip(room_ids, texts, strict=True) if not t]
            if gone:  # expired by Redis (nobody ever joined): drop them from the set too
                await self.client.srem(self._rooms_key, *gone)
        stones = await self.client.zrange(self._tombstones_key, 0, -1, withscores=True)
        return StoredState(
            rooms=rooms, tombstones={bytes.fromhex(text_of(k)): s for k, s in _pairs(stones)}
        )

    async def find_room(self, room_id: str) -> RoomRecord | None:
        """The stored record of one room, or None if no node keeps it open."""
        text = await self.client.get(self._room_key(room_id))
        return decode_record(room_id, text_of(text)) if text else None

    async def buried_until(self, key: bytes) -> float | None:
        """Until when the tombstone ``key`` answers 410 (None: there is none)."""
        score = await self.client.zscore(self._tombstones_key, key.hex())
        return None if score is None else float(score)

    async def save_room(self, record: RoomRecord) -> None:
        key = self._room_key(record.id)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(key, encode_record(record))
            if not record.ever_joined:
                # Nobody joined yet: Redis itself forgets it at its time, whoever is alive.
                pipe.expireat(key, max(1, int(record.expires_at) + 1))
            pipe.sadd(self._rooms_key, record.id)
            await pipe.execute()

    async def delete_room(self, room_id: str) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self._room_key(room_id), self._chat_key(room_id))
            pipe.srem(self._rooms_key, room_id)
            await pipe.execute()

    async def bury(self, key: bytes, until: float) -> None:
        await self.client.zadd(self._tombstones_key, {key.hex(): until})

    async def forget_tombstones(self, now: float) -> None:
        await self.client.zremrangebyscore(self._tombstones_key, "-inf", now)

    async def put_chat_value(self, room_id: str, name: str, value: str) -> None:
        await self._put_chat_value(
            keys=[self._room_key(room_id), self._chat_key(room_id)], args=[name, value]
        )

    async def chat_values(self, name: str) -> dict[str, str]:
        room_ids = sorted(text_of(i) for i in await self.client.smembers(self._rooms_key))
        if not room_ids:
            return {}
        async with self.client.pipeline(transaction=False) as pipe:
            for room_id in room_ids:
                pipe.hget(self._chat_key(room_id), name)
            values = await pipe.execute()
        return {
            room_id: text_of(value)
            for room_id, value in zip(room_ids, values, strict=True)
            if value is not None
        }

    async def close(self) -> None:
        await self.client.aclose()
