"""Rate limits shared through a real ``redis-server``: two nodes (two :class:`ServerLimits`
over one Redis) count one client address's room creations and unknown-id lookups together, so a
load balancer spreading that client over nodes gives it no more than one node would."""

from __future__ import annotations

import secrets

import redis.asyncio as aioredis

from signaling.errors import RateLimited
from signaling.limits import Bucket, ServerLimits
from signaling.redis_limits import RedisKeyedLimiter
from signaling.redis_store import text_of

from ..conftest import FakeClock
from ..support.redis_server import RedisServer

BURST = 3
CREATIONS = Bucket(burst=BURST, per_second=1 / 60)  # one more a minute after the burst
LOOKUPS = Bucket(burst=BURST, per_second=1 / 60)


def node_limits(
    client: aioredis.Redis | None, clock: FakeClock, prefix: str = "meetnow:"
) -> ServerLimits:
    """One node's limits; shared through ``client`` when given."""
    limits = ServerLimits(rooms_per_ip=CREATIONS, unknown_lookups_per_ip=LOOKUPS, clock=clock)
    if client is not None:
        limits.share(
            RedisKeyedLimiter(client, "rooms_per_ip", CREATIONS, clock, prefix),
            RedisKeyedLimiter(client, "unknown_lookups", LOOKUPS, clock, prefix),
        )
    return limits


async def creations_allowed(nodes: list[ServerLimits], ip: str, attempts: int) -> int:
    """How many of ``attempts`` room creations from ``ip``, sent to the nodes in turn (as a
    round-robin load balancer does), were let through."""
    allowed = 0
    for attempt in range(attempts):
        try:
            await nodes[attempt % len(nodes)].check_web_creation_shared(ip)
            allowed += 1
        except RateLimited:
            pass
    return allowed


async def test_room_creation_is_counted_across_nodes(redis_server: RedisServer) -> None:
    clock = FakeClock()
    client = aioredis.Redis.from_url(redis_server.url)
    prefix = f"test-{secrets.token_hex(4)}:"
    nodes = [node_limits(client, clock, prefix), node_limits(client, clock, prefix)]
    assert await creations_allowed(nodes, "198.51.100.7", 10) == BURST
    assert await creations_allowed(nodes, "198.51.100.8", 1) == 1  # another address: its own
    clock.advance(60)
    assert await creations_allowed(nodes, "198.51.100.7", 10) == 1  # refilled at the rate
    # Only hashes of the addresses are kept, and each key expires by itself.
    keys = [text_of(k) for k in await client.keys(f"{prefix}*")]
    assert len(keys) == 2 and not any("198.51" in key for key in keys)
    assert all(ttl > 0 for ttl in [await client.pttl(key) for key in keys])
    await client.aclose()


async def test_the_check_sees_limits_that_are_not_shared(redis_server: RedisServer) -> None:
    """Test of the test: two nodes with their own buckets let the burst through twice, and
    :func:`creations_allowed` reports it (so the shared test above could fail)."""
    clock = FakeClock()
    nodes = [node_limits(None, clock), node_limits(None, clock)]
    assert await creations_allowed(nodes, "198.51.100.7", 10) == 2 * BURST


async def test_unknown_lookups_on_one_node_block_the_address_on_another(
    redis_server: RedisServer,
) -> None:
    clock = FakeClock()
    client = aioredis.Redis.from_url(redis_server.url)
    prefix = f"test-{secrets.token_hex(4)}:"
    node_a, node_b = node_limits(client, clock, prefix), node_limits(client, clock, prefix)
    for _ in range(BURST):
        assert not await node_b.lookups_blocked_shared("203.0.113.9")
        await node_a.count_unknown_lookup_shared("203.0.113.9")
    assert await node_b.lookups_blocked_shared("203.0.113.9")
    assert not await node_b.lookups_blocked_shared("203.0.113.10")
    clock.advance(60)
    assert not await node_b.lookups_blocked_shared("203.0.113.9")
    await client.aclose()
