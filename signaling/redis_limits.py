"""Token buckets in Redis, shared by every node: the limits that protect the service as a whole
(rooms created per address, unknown-id lookups per address) must not multiply with the number of
nodes a load balancer spreads one client over.

One Lua script refills and spends a bucket atomically (two nodes never both spend the last
token). The time comes from the caller's clock (injectable, as for :class:`~signaling.limits.
KeyedLimiter`), not Redis's, so tests can move it; nodes' clocks only need to agree to a second
or so, which is what NTP gives. Keys are SHA-256 of what is limited (an address), never the
address itself, and each expires once its bucket would be full again.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .limits import Bucket, KeyedLimiter

__all__ = ["RedisKeyedLimiter"]

# KEYS[1]: the bucket. ARGV: burst, per_second, now, cost (0: only look). Returns 1 if the cost
# was spent (or, for cost 0, if at least one token is left), else 0.
_TAKE = """
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
if now > at then
    tokens = math.min(burst, tokens + (now - at) * rate)
    at = now
end
if cost == 0 then
    if tokens >= 1 then return 1 end
    return 0
end
if tokens < cost then
    return 0
end
tokens = tokens - cost
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return 1
"""


class RedisKeyedLimiter:
    """One shared token bucket per key, named ``{prefix}limit:{name}:{sha256(key)}``."""

    def __init__(
        self,
        client: aioredis.Redis,
        name: str,
        bucket: Bucket,
        clock: Callable[[], float] = time.time,
        prefix: str = "meetnow:",
        fallback: KeyedLimiter | None = None,
    ) -> None:
        self.bucket = bucket
        self._fallback = fallback
        """This node's own buckets, used while Redis is away (a limit per node beats none, and
        beats refusing everyone)."""
        self._clock = clock
        self._base = f"{prefix}limit:{name}:"
        self._take = client.register_script(_TAKE)

    def _key(self, key: str) -> str:
        return self._base + hashlib.sha256(key.encode()).hexdigest()

    async def _run(self, key: str, cost: float) -> bool:
        if not math.isfinite(cost) or cost < 0:
            raise ValueError("cost must be a finite number >= 0")
        args: list[float | str] = [
            self.bucket.burst,
            self.bucket.per_second,
            repr(self._clock()),
            cost,
        ]
        return bool(await self._take(keys=[self._key(key)], args=args))

    async def allow(self, key: str, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens of ``key``'s shared bucket if it has them."""
        try:
            return await self._run(key, cost)
        except RedisError:
            if self._fallback is None:
                raise
            return self._fallback.allow(key, cost)

    async def exhausted(self, key: str) -> bool:
        """Whether ``key`` has no token left right now (without spending one)."""
        try:
            return not await self._run(key, 0.0)
        except RedisError:
            if self._fallback is None:
                raise
            return self._fallback.exhausted(key)
