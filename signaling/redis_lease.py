"""A lease on Redis (``MEETNOW_REDIS_URL``): something only one node may hold at a time (a chat
platform's single connection, such as Discord's gateway), kept alive while held and taken over
by another node when its holder dies.

Key ``lease:{name}`` (under the store's prefix): the holder's node id, set only if absent with a
TTL of :data:`LEASE_TTL_SECONDS`, renewed every :data:`LEASE_RENEW_SECONDS` by the holder alone
(compare-and-renew). A node that waits tries every ``LEASE_RENEW_SECONDS``, so when a holder dies
(``kill -9``) another node holds the lease within ``LEASE_TTL_SECONDS + LEASE_RENEW_SECONDS``
(6 s); a holder that stops cleanly lets go at once and the next one takes it within 1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .redis_store import RELEASE_IF_HOLDER, RENEW_IF_HOLDER

__all__ = ["LEASE_RENEW_SECONDS", "LEASE_TTL_SECONDS", "hold_lease"]

logger = logging.getLogger(__name__)

LEASE_TTL_SECONDS = 5.0
LEASE_RENEW_SECONDS = 1.0


async def _take(client: aioredis.Redis, key: str, node_id: str, ttl_ms: int) -> None:
    """Wait until this node holds ``key`` (Redis away: keep trying)."""
    while True:
        try:
            if await client.set(key, node_id, nx=True, px=ttl_ms):
                return
        except RedisError as error:
            logger.warning("lease not taken (Redis): %s", type(error).__name__)
        await asyncio.sleep(LEASE_RENEW_SECONDS)


async def _keep(client: aioredis.Redis, key: str, node_id: str, ttl_ms: int) -> None:
    renew = client.register_script(RENEW_IF_HOLDER)
    while True:
        await asyncio.sleep(LEASE_RENEW_SECONDS)
        try:
            if not await renew(keys=[key], args=[node_id, ttl_ms]):
                # Expired (Redis was away longer than the TTL): take it back if still free.
                if await client.set(key, node_id, nx=True, px=ttl_ms):
                    continue
                logger.warning("a lease held here was taken by another node")
        except RedisError as error:
            logger.warning("lease not renewed (Redis): %s", type(error).__name__)


@contextlib.asynccontextmanager
async def hold_lease(
    client: aioredis.Redis, key: str, node_id: str, ttl_seconds: float = LEASE_TTL_SECONDS
) -> AsyncIterator[None]:
    """Enter once this node holds the lease ``key``; it is renewed until exit, then let go."""
    ttl_ms = int(ttl_seconds * 1000)
    await _take(client, key, node_id, ttl_ms)
    keeper = asyncio.ensure_future(_keep(client, key, node_id, ttl_ms))
    try:
        yield
    finally:
        # Shielded: a shutdown cancels the task holding the lease while it lets go; the other
        # nodes should not wait for the TTL to take over.
        letting_go = asyncio.ensure_future(_let_go(client, key, node_id, keeper))
        try:
            await asyncio.shield(letting_go)
        except asyncio.CancelledError:
            await letting_go
            raise


async def _let_go(
    client: aioredis.Redis, key: str, node_id: str, keeper: asyncio.Future[None]
) -> None:
    keeper.cancel()
    await asyncio.gather(keeper, return_exceptions=True)
    with contextlib.suppress(RedisError):
        await client.register_script(RELEASE_IF_HOLDER)(keys=[key], args=[node_id])
