"""Writing back to Redis what it lost of the calls running on this node.

A Redis restarted without persistence comes back empty while calls go on, each on its node: the
node's memory then holds the only copy of its rooms. Without their records, a page reconnecting
through another node would get the 404 of an unknown room and a chat card could no longer be
found. So a node that finds Redis has forgotten it (:class:`~signaling.redis_registry.
NodeRegistry` calls back) writes back each room with people (or a lobby) on it, and the chat
card references it kept for them, with :class:`RoomRestorer`.

One Lua script per room, so the checks and the writes are one step: nothing is written for a
room with a tombstone (ended elsewhere: never brought back), the record only if absent (another
node may have written a newer one meanwhile), each chat value only if absent. The keys are
those of :class:`~signaling.redis_store.RedisRoomStore`.
"""

from __future__ import annotations

from collections.abc import Mapping

import redis.asyncio as aioredis

from .redis_store import DEFAULT_PREFIX
from .room_store import RoomRecord, encode_record
from .tombstones import secret_key

__all__ = ["RoomRestorer"]

# KEYS: the room's record, the set of room ids, the tombstones, the room's chat values.
# ARGV: the room id, its record, its tombstone member, the record's expiry (unix seconds; 0:
# none), then chat value names and values in pairs. Returns 1 if the record was written back,
# 0 if one was there already, -1 if the room is buried (nothing written).
_RESTORE_IF_ABSENT = """
if redis.call('ZSCORE', KEYS[3], ARGV[3]) then
    return -1
end
local restored = 0
if redis.call('SET', KEYS[1], ARGV[2], 'NX') then
    restored = 1
    if tonumber(ARGV[4]) > 0 then
        redis.call('EXPIREAT', KEYS[1], ARGV[4])
    end
end
redis.call('SADD', KEYS[2], ARGV[1])
for i = 5, #ARGV, 2 do
    redis.call('HSETNX', KEYS[4], ARGV[i], ARGV[i + 1])
end
return restored
"""


class RoomRestorer:
    """Writes a room back into the shared store unless it is there or was ended."""

    def __init__(self, client: aioredis.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix
        self._restore = client.register_script(_RESTORE_IF_ABSENT)

    async def restore(self, record: RoomRecord, chat_values: Mapping[str, str]) -> bool:
        """Write ``record`` and ``chat_values`` back where absent; whether the record was
        missing (and is back). Raises ``RedisError`` if Redis is away."""
        room_id = record.id
        # As RedisRoomStore.save_room: a room nobody joined yet goes at its time by itself.
        expires_at = 0 if record.ever_joined else max(1, int(record.expires_at) + 1)
        pairs = [part for item in sorted(chat_values.items()) for part in item]
        keys = [
            f"{self.prefix}room:{room_id}",
            f"{self.prefix}rooms",
            f"{self.prefix}tombstones",
            f"{self.prefix}chat:{room_id}",
        ]
        args: list[str | int] = [
            room_id,
            encode_record(record),
            secret_key(room_id).hex(),
            expires_at,
            *pairs,
        ]
        return int(await self._restore(keys=keys, args=args)) == 1
