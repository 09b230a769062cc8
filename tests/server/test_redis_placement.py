"""A new room goes to the least loaded node (issue 16, many nodes): two real ``meetnow serve``
nodes on one real ``redis-server``; node A holds a room of ``LOAD_MARGIN + 1`` participants, node
B none. A new room's first participant entering through A is placed on B: A claims the room for B
and forwards the participant there, so the offer's ICE candidates are all B's ports.

The test of the test: with A busier by only ``LOAD_MARGIN`` the new room stays on A, and the same
check reports every candidate outside B's ports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from signaling.client import ParticipantClient, PatternVideoTrack
from signaling.redis_registry import LOAD_MARGIN

from ..support.redis_server import running_redis
from ..support.serve_process import ServeProcess
from .test_redis_nodes import candidate_ports, create_room, ice_ports, media_outside, two_nodes


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[ServeProcess, ServeProcess]]:
    with (
        running_redis(tmp_path / "redis") as redis_server,
        two_nodes(tmp_path, MEETNOW_REDIS_URL=redis_server.url) as pair,
    ):
        yield pair


@pytest.fixture
async def clients() -> AsyncIterator[list[ParticipantClient]]:
    made: list[ParticipantClient] = []
    yield made
    async with AsyncExitStack() as stack:
        for client in made:
            stack.push_async_callback(client.close)


async def node_a_holding(
    nodes: tuple[ServeProcess, ServeProcess], people: int, clients: list[ParticipantClient]
) -> None:
    """``people`` participants in one room, all entering through node A (its room). A node
    weighs its own load as it is now and the others' as last published (B's: 0 from its start)."""
    node_a, _ = nodes
    status, body = await create_room(node_a, "198.51.100.20")
    assert status == 201, body
    for index in range(people):
        client = ParticipantClient(node_a.base_url, body["id"], f"P{index}")
        clients.append(client)
        await client.join(timeout=30)


async def first_participant_of_a_new_room(
    nodes: tuple[ServeProcess, ServeProcess], clients: list[ParticipantClient]
) -> str:
    """A new room, its first participant entering through node A: the SDP they are offered."""
    node_a, _ = nodes
    status, body = await create_room(node_a, "198.51.100.21")
    assert status == 201, body
    newcomer = ParticipantClient(node_a.base_url, body["id"], "New", video=PatternVideoTrack())
    clients.append(newcomer)
    await newcomer.join(timeout=30)
    deadline = time.monotonic() + 30
    while newcomer.pc is None or newcomer.pc.remoteDescription is None:
        assert time.monotonic() < deadline, "no offer within 30 s"
        await asyncio.sleep(0.05)
    return newcomer.pc.remoteDescription.sdp


async def test_a_new_room_goes_to_the_less_loaded_node(
    nodes: tuple[ServeProcess, ServeProcess], clients: list[ParticipantClient]
) -> None:
    node_b = nodes[1]
    await node_a_holding(nodes, LOAD_MARGIN + 1, clients)
    sdp = await first_participant_of_a_new_room(nodes, clients)
    assert media_outside(sdp, ice_ports(node_b)) == set()


async def test_the_test_within_the_margin_the_room_stays_where_it_arrived(
    nodes: tuple[ServeProcess, ServeProcess], clients: list[ParticipantClient]
) -> None:
    node_a, node_b = nodes
    await node_a_holding(nodes, LOAD_MARGIN, clients)
    sdp = await first_participant_of_a_new_room(nodes, clients)
    assert media_outside(sdp, ice_ports(node_b)) == candidate_ports(sdp)
    assert media_outside(sdp, ice_ports(node_a)) == set()
