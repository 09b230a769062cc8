"""Node heartbeats and room claims on a real ``redis-server`` (issue 16, many nodes): nodes are
listed with their load, the first claim of a room wins, a live node keeps its claims past the
TTL, a dead node's claims expire within the TTL and another node then claims the room."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import pytest

from signaling.redis_registry import NODE_TTL_SECONDS, NodeRegistry
from signaling.redis_store import connect
from signaling.room_model import new_room_id

from ..support.redis_server import RedisServer


class Node:
    """A registry with the rooms and load a node would report."""

    def __init__(self, redis_server: RedisServer, prefix: str) -> None:
        self.rooms: set[str] = set()
        self.load = 0
        self.registry = NodeRegistry(
            connect(redis_server.url),
            load=lambda: self.load,
            rooms_here=lambda: self.rooms,
            prefix=prefix,
        )

    async def heartbeats(self, count: int, timeout: float = 30.0) -> None:
        """Wait until ``count`` more heartbeats reached Redis."""
        target = self.registry.heartbeats + count
        deadline = time.monotonic() + timeout
        while self.registry.heartbeats < target:
            assert time.monotonic() < deadline, f"fewer than {count} heartbeats in {timeout} s"
            await asyncio.sleep(0.02)


@pytest.fixture
async def nodes(redis_server: RedisServer) -> AsyncIterator[tuple[Node, Node]]:
    prefix = f"test-{secrets.token_hex(4)}:"
    pair = Node(redis_server, prefix), Node(redis_server, prefix)
    yield pair
    for node in pair:
        await node.registry.stop()
        await node.registry.client.aclose()


async def claim_gone_within(node: Node, room_id: str, seconds: float) -> float | None:
    """How long until no node claims ``room_id`` (None: still claimed after ``seconds``)."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if await node.registry.holder(room_id) is None:
            return time.monotonic() - start
        await asyncio.sleep(0.05)
    return None


async def test_nodes_are_listed_with_their_load_and_the_first_claim_wins(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    a.load, b.load = 3, 1
    await a.registry.beat()
    await b.registry.beat()
    assert await a.registry.live_nodes() == {a.registry.node_id: 3, b.registry.node_id: 1}

    room_id = new_room_id()
    assert await a.registry.claim(room_id) == a.registry.node_id
    assert await b.registry.claim(room_id) == a.registry.node_id  # held: b gets a's id
    assert await b.registry.holder(room_id) == a.registry.node_id
    assert room_id in a.registry.held and room_id not in b.registry.held


async def test_a_dead_nodes_claims_expire_and_another_node_claims_the_room(
    nodes: tuple[Node, Node],
) -> None:
    a, b = nodes
    room_id = new_room_id()
    a.rooms.add(room_id)
    # One heartbeat and never another: a node killed right after it.
    assert await a.registry.claim(room_id) == a.registry.node_id
    await a.registry.beat()
    gone_after = await claim_gone_within(b, room_id, NODE_TTL_SECONDS + 5)
    assert gone_after is not None and gone_after <= NODE_TTL_SECONDS + 1
    assert a.registry.node_id not in await b.registry.live_nodes()
    assert await b.registry.claim(room_id) == b.registry.node_id


async def test_a_live_node_keeps_its_claims_past_the_ttl_and_lets_go_of_empty_rooms(
    nodes: tuple[Node, Node],
) -> None:
    """Also the test of the test for :func:`claim_gone_within`: on a live node's claim it reports
    that the claim did not go."""
    a, b = nodes
    room_id = new_room_id()
    a.rooms.add(room_id)
    assert await a.registry.claim(room_id) == a.registry.node_id
    a.registry.start()
    await a.heartbeats(1)
    assert await claim_gone_within(b, room_id, 2 * NODE_TTL_SECONDS) is None
    assert await b.registry.holder(room_id) == a.registry.node_id

    a.rooms.discard(room_id)  # its last participant here left: let go once the hold is over
    await a.heartbeats(1)
    assert await b.registry.holder(room_id) == a.registry.node_id  # held for a join to come
    a.registry.claim_hold_seconds = 0.0
    await a.heartbeats(1)
    assert await b.registry.holder(room_id) is None
    assert await b.registry.claim(room_id) == b.registry.node_id


async def test_a_stopped_node_unregisters_and_lets_go_at_once(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    room_id = new_room_id()
    a.rooms.add(room_id)
    a.registry.start()
    await a.heartbeats(1)
    assert await b.registry.holder(room_id) == a.registry.node_id  # claimed by the heartbeat
    await a.registry.stop()
    assert await b.registry.holder(room_id) is None
    assert a.registry.node_id not in await b.registry.live_nodes()
