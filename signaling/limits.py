"""Rate limits: token buckets keyed by who is asking, with an injectable clock.

Defaults are generous for real use and tight for abuse: a person creates a few rooms an hour, a
sweeper tries thousands of ids a minute.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .errors import RateLimited

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["Bucket", "KeyedLimiter", "ServerLimits", "SharedLimiter", "TokenBucket"]


def _hourly(per_hour: float, burst_fraction: int) -> Bucket:
    return Bucket(burst=max(1.0, per_hour / burst_fraction), per_second=per_hour / 3600)


@dataclass(frozen=True)
class Bucket:
    """``burst`` requests at once, refilled at ``per_second``."""

    burst: float
    """Bucket size: requests allowed back to back."""
    per_second: float
    """Sustained rate."""


class TokenBucket:
    """One token bucket (a websocket connection's messages, say)."""

    def __init__(self, bucket: Bucket, clock: Callable[[], float] = time.monotonic) -> None:
        self.bucket = bucket
        self._clock = clock
        self.tokens = bucket.burst
        """Tokens left at :attr:`at`."""
        self.at = clock()
        """When :attr:`tokens` was last brought up to date."""

    def refill(self, now: float) -> float:
        """Tokens available at ``now`` (without spending any)."""
        return min(self.bucket.burst, self.tokens + (now - self.at) * self.bucket.per_second)

    def allow(self, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if there are that many."""
        now = self._clock()
        self.tokens, self.at = self.refill(now), now
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True


class KeyedLimiter:
    """One token bucket per key (an IP, a chat user...), the oldest keys forgotten past
    ``max_keys`` so memory stays bounded under a flood of sources."""

    def __init__(
        self, bucket: Bucket, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        self.bucket = bucket
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def allow(self, key: str, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens of ``key``'s bucket if it has them."""
        bucket = self._buckets.pop(key, None) or TokenBucket(self.bucket, self._clock)
        self._buckets[key] = bucket  # most recently used last
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return bucket.allow(cost)

    def exhausted(self, key: str) -> bool:
        """Whether ``key`` has no token left right now (without spending one)."""
        bucket = self._buckets.get(key)
        return bucket is not None and bucket.refill(self._clock()) < 1.0


class SharedLimiter(Protocol):
    """A :class:`KeyedLimiter` whose buckets every node shares (``signaling.redis_limits``)."""

    async def allow(self, key: str, cost: float = 1.0) -> bool: ...

    async def exhausted(self, key: str) -> bool: ...


class ServerLimits:
    """Every limit of one server. With :meth:`share`, the limits that protect the service as a
    whole (rooms per address, unknown-id lookups) are counted across all nodes; the ``*_shared``
    methods consult those (and fall back to this node's buckets when nothing is shared)."""

    def __init__(
        self,
        *,
        rooms_per_ip: Bucket = Bucket(burst=20, per_second=60 / 3600),
        rooms_per_user: Bucket = Bucket(burst=10, per_second=30 / 3600),
        rooms_per_org: Bucket = Bucket(burst=100, per_second=600 / 3600),
        unknown_lookups_per_ip: Bucket = Bucket(burst=20, per_second=20 / 60),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rooms_per_ip = KeyedLimiter(rooms_per_ip, clock)
        """Rooms created from the web page or API, per client address."""
        self.rooms_per_user = KeyedLimiter(rooms_per_user, clock)
        """Rooms created by one chat user."""
        self.rooms_per_org = KeyedLimiter(rooms_per_org, clock)
        """Rooms created in one Slack workspace or Discord guild."""
        self.unknown_lookups = KeyedLimiter(unknown_lookups_per_ip, clock)
        """Lookups of room ids that do not exist, per client address: sweeping ids hits 429."""
        self.shared_rooms_per_ip: SharedLimiter | None = None
        self.shared_unknown_lookups: SharedLimiter | None = None

    def share(self, rooms_per_ip: SharedLimiter, unknown_lookups: SharedLimiter) -> None:
        """Count room creation and unknown lookups per address across every node."""
        self.shared_rooms_per_ip = rooms_per_ip
        self.shared_unknown_lookups = unknown_lookups

    @classmethod
    def from_settings(
        cls, settings: Settings, clock: Callable[[], float] = time.monotonic
    ) -> ServerLimits:
        return cls(
            rooms_per_ip=_hourly(settings.limit_rooms_per_ip_per_hour, 3),
            rooms_per_user=_hourly(settings.limit_rooms_per_user_per_hour, 3),
            rooms_per_org=_hourly(settings.limit_rooms_per_org_per_hour, 6),
            unknown_lookups_per_ip=Bucket(
                burst=settings.limit_unknown_lookups_per_minute,
                per_second=settings.limit_unknown_lookups_per_minute / 60,
            ),
            clock=clock,
        )

    def check_web_creation(self, ip: str) -> None:
        if not self.rooms_per_ip.allow(ip):
            raise RateLimited("Too many meetings created from this address; try again later.")

    def check_chat_creation(self, platform: str, org: str, user: str) -> None:
        """Raise :class:`RateLimited` if this chat user or their workspace/guild creates too much."""
        user_key, org_key = f"{platform}:{org}:{user}", f"{platform}:{org}"
        if self.rooms_per_user.exhausted(user_key):
            raise RateLimited("You have started many meetings recently; try again in a while.")
        if not self.rooms_per_org.allow(org_key):
            raise RateLimited("This workspace has started many meetings recently; try again later.")
        self.rooms_per_user.allow(user_key)

    def lookups_blocked(self, ip: str) -> bool:
        """Whether this address has swept too many unknown ids: it gets 429 for every lookup."""
        return self.unknown_lookups.exhausted(ip)

    def count_unknown_lookup(self, ip: str) -> None:
        self.unknown_lookups.allow(ip)

    async def check_web_creation_shared(self, ip: str) -> None:
        """:meth:`check_web_creation`, counted across every node when shared."""
        if self.shared_rooms_per_ip is None:
            self.check_web_creation(ip)
        elif not await self.shared_rooms_per_ip.allow(ip):
            raise RateLimited("Too many meetings created from this address; try again later.")

    async def lookups_blocked_shared(self, ip: str) -> bool:
        """:meth:`lookups_blocked`, counted across every node when shared."""
        if self.shared_unknown_lookups is None:
            return self.lookups_blocked(ip)
        return await self.shared_unknown_lookups.exhausted(ip)

    async def count_unknown_lookup_shared(self, ip: str) -> None:
        if self.shared_unknown_lookups is None:
            self.count_unknown_lookup(ip)
        else:
            await self.shared_unknown_lookups.allow(ip)
