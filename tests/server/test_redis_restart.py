"""A Redis restarted without persistence, under calls in progress (issue 16, "Redis lost for a
while"): it comes back empty, and the node running each call writes back what it lost.

- Two real ``meetnow serve`` nodes on a real ``redis-server``: the call on node A keeps its
  media, its record is back in Redis within a few heartbeats, and a newcomer entering through
  node B gets into the same call (on A) and sees its video. Test of the test: with node A frozen
  (SIGSTOP: no heartbeat, so no write-back) right after the restart, node B answers the room's
  link and websocket with 404, the failure the write-back exists to prevent.
- Two room services on a real ``redis-server``, heartbeats driven one by one: the record, the
  claim and the chat card reference come back; a room ended meanwhile stays ended and a record
  another node wrote meanwhile is left as it is, while the same heartbeat writes back the rest.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import time
from pathlib import Path

from signaling.client import ParticipantClient, PatternVideoTrack
from signaling.redis_registry import NODE_TTL_SECONDS
from signaling.redis_rooms import SharedRoomService
from signaling.redis_store import RedisRoomStore, connect, text_of
from signaling.room_model import RoomLimits
from signaling.room_store import record_of
from signaling.tombstones import secret_key

from ..conftest import FakeClock
from ..support.redis_server import RedisServer, running_redis
from ..support.serve_process import ServeProcess
from .test_redis_nodes import (
    ada_and_bea,
    frames_advance,
    ice_ports,
    media_outside,
    page_status,
    receives_frames,
    two_nodes,
    websocket_refused,
)

CLIENT_IP = "198.51.100.40"
CARD = "card:chat"


def restart_empty(redis_server: RedisServer) -> None:
    """Kill Redis (as a crash) and start it again on the same port: it persists nothing, so it
    comes back empty."""
    redis_server.stop()
    redis_server.start()


async def stored_record(redis_server: RedisServer, room_id: str) -> dict[str, object] | None:
    """The room's record as Redis holds it (None: Redis does not know the room)."""
    client = connect(redis_server.url)
    try:
        text = await client.get(f"meetnow:room:{room_id}")
        return None if text is None else dict(json.loads(text_of(text)))
    finally:
        await client.aclose()


async def record_comes_back(redis_server: RedisServer, room_id: str) -> None:
    """Wait until the room's record is in Redis again (a few heartbeats at most)."""
    deadline = time.monotonic() + NODE_TTL_SECONDS + 20
    while await stored_record(redis_server, room_id) is None:
        assert time.monotonic() < deadline, "the room's record never came back to Redis"
        await asyncio.sleep(0.1)


async def printed(node: ServeProcess, text: str) -> None:
    """Wait until ``node`` has printed ``text`` (its log shows INFO and up)."""
    deadline = time.monotonic() + 30
    while not any(text in line for line in list(node.lines)):
        assert time.monotonic() < deadline, f"{text!r} not printed within 30 s"
        await asyncio.sleep(0.1)


async def test_a_call_outlives_a_redis_restarted_empty(tmp_path: Path) -> None:
    with (
        running_redis(tmp_path / "redis") as redis_server,
        two_nodes(tmp_path, MEETNOW_REDIS_URL=redis_server.url) as (node_a, node_b),
    ):
        async with ada_and_bea(node_a, node_a, CLIENT_IP) as call:
            room_id, ada, bea = call.room_id, call.ada, call.bea
            cy = ParticipantClient(node_b.base_url, room_id, "Cy", video=PatternVideoTrack())
            call.more.append(cy)
            assert ada.participant_id is not None

            node_a.process.send_signal(signal.SIGSTOP)
            try:
                restart_empty(redis_server)
                # Test of the test: without node A's write-back, Redis has no record and node B
                # answers the room's link and a reconnecting page with 404.
                assert await stored_record(redis_server, room_id) is None
                assert await page_status(node_b, room_id, CLIENT_IP) == 404
                assert await websocket_refused(node_b, room_id) == 404
            finally:
                node_a.process.send_signal(signal.SIGCONT)

            await record_comes_back(redis_server, room_id)
            await printed(node_a, "Redis had lost 1 room(s) with people here: written back")
            await frames_advance(bea, ada.participant_id)
            # Cy enters once both nodes' buses listen again: a resubscription closes the
            # forwarded websockets (1012), which would cut a join in progress short.
            for node in (node_a, node_b):
                await printed(node, "node bus subscribed again")
            assert await page_status(node_b, room_id, CLIENT_IP) == 200
            await cy.join(timeout=30)
            await receives_frames(cy, ada.participant_id)
            assert cy.participant_id is not None
            await receives_frames(ada, cy.participant_id)
            assert cy.pc is not None and cy.pc.remoteDescription is not None
            # Cy's call is node A's (claimed again there): every candidate is one of A's ports.
            assert media_outside(cy.pc.remoteDescription.sdp, ice_ports(node_a)) == set()


def shared_node(redis_server: RedisServer, clock: FakeClock) -> SharedRoomService:
    """A node's room service whose heartbeats the test runs itself (``registry.beat``)."""
    store = RedisRoomStore.from_url(redis_server.url)
    return SharedRoomService(RoomLimits(empty_grace_seconds=60), store=store, clock=clock)


async def test_a_heartbeat_after_an_empty_restart_writes_back_room_claim_and_card(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    with running_redis(tmp_path / "redis") as redis_server:
        node_a, node_b = shared_node(redis_server, clock), shared_node(redis_server, clock)
        try:
            room = node_a.create_room("Standup", lobby=True)
            node_a.join(room.id, "Ada", "ada")
            node_a.remember(room.id, CARD, '{"message": "m1"}')
            await node_a.flush()
            await node_a.registry.beat()
            assert await node_a.registry.holder(room.id) == node_a.registry.node_id

            restart_empty(redis_server)
            await node_b.fetch(room.id)
            assert node_b.get_room(room.id) is None  # lost: the failure the write-back fixes

            await node_a.registry.beat()
            await node_b.fetch(room.id)
            copy = node_b.get_room(room.id)
            assert copy is not None and copy.topic == "Standup" and copy.lobby
            assert await node_b.remembered(CARD) == {room.id: '{"message": "m1"}'}
            assert await node_a.registry.holder(room.id) == node_a.registry.node_id
            assert await node_a.registry.is_alive(node_a.registry.node_id)
        finally:
            await node_a.close()
            await node_b.close()


async def test_the_write_back_leaves_ended_rooms_ended_and_newer_records_alone(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    with running_redis(tmp_path / "redis") as redis_server:
        node_a, other = shared_node(redis_server, clock), shared_node(redis_server, clock)
        try:
            ended, changed, kept = (node_a.create_room(topic) for topic in ("E", "C", "K"))
            for room in (ended, changed, kept):
                node_a.join(room.id, "Ada", f"ada-{room.topic}")
            await node_a.flush()
            await node_a.registry.beat()

            restart_empty(redis_server)
            # Before node A's next heartbeat, another node ends one room and writes another.
            await other.shared.bury(secret_key(ended.id), clock.now + 3600)
            newer = dataclasses.replace(record_of(changed), topic="Written elsewhere")
            await other.shared.save_room(newer)
            await node_a.registry.beat()

            assert await stored_record(redis_server, ended.id) is None
            newer_stored = await stored_record(redis_server, changed.id)
            assert newer_stored is not None and newer_stored["topic"] == "Written elsewhere"
            # The same heartbeat did write back the third room (so the two checks above could
            # have failed).
            kept_stored = await stored_record(redis_server, kept.id)
            assert kept_stored is not None and kept_stored["topic"] == "K"
        finally:
            await node_a.close()
            await other.close()
