"""Two real ``meetnow serve`` nodes on one real ``redis-server`` (issue 16, many nodes): a room
made on one node opens on the other, a room its host ended answers 410 on both, and the
per-address limits on new rooms and unknown links count across the nodes. The test of the test
runs the same checks against two nodes without Redis and sees them report it."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from signaling.client import ParticipantClient, PatternVideoTrack
from signaling.redis_registry import NODE_TTL_SECONDS
from signaling.redis_store import connect, text_of
from signaling.room_model import new_room_id

from ..support.coturn import free_udp_port
from ..support.redis_server import RedisServer, running_redis
from ..support.serve_process import ServeProcess, meetnow_serve

ICE_PORTS_PER_NODE = 20

LIMITS = {
    # Behind a load balancer: the client's address comes in X-Forwarded-For, so each test
    # below is a client of its own and the nodes can be shared by the whole module.
    "MEETNOW_TRUST_FORWARDED_FOR": "true",
    "MEETNOW_LIMIT_ROOMS_PER_IP_PER_HOUR": "6",  # a burst of 2 rooms, then one every 10 min
    "MEETNOW_LIMIT_UNKNOWN_LOOKUPS_PER_MINUTE": "2",  # a burst of 2, then one every 30 s
}


def node_settings(index: int, **settings: str) -> dict[str, str]:
    """A node's own ICE ports (two nodes on one machine must not share them) and ``LIMITS``."""
    first = min(free_udp_port(), 65535 - 2 * ICE_PORTS_PER_NODE) + index * ICE_PORTS_PER_NODE
    ports = f"{first}-{first + ICE_PORTS_PER_NODE - 1}"
    return {"MEETNOW_ICE_PORT_RANGE": ports, "MEETNOW_RELAY_WORKERS": "1", **LIMITS, **settings}


@contextlib.contextmanager
def two_nodes(directory: Path, **settings: str) -> Iterator[tuple[ServeProcess, ServeProcess]]:
    (directory / "a").mkdir()
    (directory / "b").mkdir()
    with (
        meetnow_serve(directory / "a", **node_settings(0, **settings)) as node_a,
        meetnow_serve(directory / "b", **node_settings(1, **settings)) as node_b,
    ):
        yield node_a, node_b


@pytest.fixture(scope="module")
def nodes(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServeProcess, ServeProcess]]:
    with two_nodes(tmp_path_factory.mktemp("nodes"), MEETNOW_REDIS_URL=redis_server.url) as pair:
        yield pair


async def create_room(node: ServeProcess, client_ip: str) -> tuple[int, dict[str, str]]:
    """POST /api/rooms on ``node`` as the client at ``client_ip``: status and body."""
    headers = {"X-Forwarded-For": client_ip}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{node.base_url}/api/rooms", json={}, headers=headers) as response:
            body = await response.json()
            return response.status, body


async def page_status(node: ServeProcess, room_id: str, client_ip: str) -> int:
    headers = {"X-Forwarded-For": client_ip}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{node.base_url}/r/{room_id}", headers=headers) as response:
            return response.status


async def creations_across(nodes: tuple[ServeProcess, ServeProcess], client_ip: str) -> list[int]:
    """Four rooms asked for by one client, alternating nodes A, B, A, B: their statuses. Shared
    limits (a burst of 2) answer 201, 201, 429, 429; each node alone would allow 2 of its own."""
    a, b = nodes
    return [(await create_room(node, client_ip))[0] for node in (a, b, a, b)]


async def unknown_lookups_across(
    nodes: tuple[ServeProcess, ServeProcess], client_ip: str
) -> list[int]:
    """Four unknown links opened by one client, alternating A, B, A, B: 404, 404, 429, 429 when
    the nodes count together (a burst of 2)."""
    a, b = nodes
    return [await page_status(node, new_room_id(), client_ip) for node in (a, b, a, b)]


async def test_both_nodes_say_what_they_share(nodes: tuple[ServeProcess, ServeProcess]) -> None:
    for node in nodes:
        summary = "".join(node.lines)
        assert "(MEETNOW_REDIS_URL), shared with every node on it" in summary
        assert "websockets that land on another node are forwarded there" in summary


async def test_a_room_made_on_one_node_opens_and_ends_on_both(
    nodes: tuple[ServeProcess, ServeProcess],
) -> None:
    node_a, node_b = nodes
    client_ip = "198.51.100.1"
    status, body = await create_room(node_a, client_ip)
    assert status == 201, body
    room_id, host_token = body["id"], body["host_url"].split("#host=", 1)[1]
    assert await page_status(node_b, room_id, client_ip) == 200
    assert await page_status(node_a, room_id, client_ip) == 200

    host = ParticipantClient(node_a.base_url, room_id, "Host", host_token=host_token)
    try:
        await host.join(timeout=30)
        await host.send({"type": "end_meeting"})
        await host.next_message("room_closed", timeout=30)
    finally:
        await host.close()
    # Node A answers first: its lookup writes what it has queued before reading Redis, so what
    # node B reads next includes the end.
    assert await page_status(node_a, room_id, client_ip) == 410
    assert await page_status(node_b, room_id, client_ip) == 410


async def test_rate_limits_count_across_nodes(nodes: tuple[ServeProcess, ServeProcess]) -> None:
    assert await creations_across(nodes, "198.51.100.2") == [201, 201, 429, 429]
    assert await unknown_lookups_across(nodes, "198.51.100.3") == [404, 404, 429, 429]


async def test_the_test_two_nodes_without_redis_share_nothing(tmp_path: Path) -> None:
    """The same checks against two nodes that do not share Redis report it: the room is unknown
    on the other node, and each node lets its own burst through."""
    with two_nodes(tmp_path, MEETNOW_STORE="memory") as pair:
        node_a, node_b = pair
        status, body = await create_room(node_a, "198.51.100.4")
        assert status == 201, body
        assert await page_status(node_b, body["id"], "198.51.100.4") == 404
        assert await creations_across(pair, "198.51.100.5") == [201, 201, 201, 201]
        assert await unknown_lookups_across(pair, "198.51.100.6") == [404, 404, 404, 404]


async def claim_of(redis_server: RedisServer, room_id: str) -> str | None:
    """The id of the node whose room it is, as Redis holds it (None: no live node claims it)."""
    client = connect(redis_server.url)
    try:
        holder = await client.get(f"meetnow:claim:{room_id}")
        return None if holder is None else text_of(holder)
    finally:
        await client.aclose()


async def test_a_killed_nodes_claim_expires_and_the_other_node_claims_the_room(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """The node where a room's first participant arrives claims it; ``kill -9`` of that node:
    its claim expires within the TTL, and the next participant's node claims the room."""
    with two_nodes(tmp_path, MEETNOW_REDIS_URL=redis_server.url) as (node_a, node_b):
        status, body = await create_room(node_b, "198.51.100.7")
        assert status == 201, body
        room_id = body["id"]
        first = ParticipantClient(node_a.base_url, room_id, "Ada")
        try:
            await first.join(timeout=30)
            claimed_by_a = await claim_of(redis_server, room_id)
            assert claimed_by_a is not None
            node_a.process.kill()
            node_a.process.wait(10)
            killed_at = time.monotonic()
            while await claim_of(redis_server, room_id) is not None:
                assert time.monotonic() - killed_at < NODE_TTL_SECONDS + 10, "claim never expired"
                await asyncio.sleep(0.05)
        finally:
            await first.close()
        second = ParticipantClient(node_b.base_url, room_id, "Bea")
        try:
            await second.join(timeout=30)
            claimed_by_b = await claim_of(redis_server, room_id)
            assert claimed_by_b is not None and claimed_by_b != claimed_by_a
        finally:
            await second.close()


def ice_ports(node: ServeProcess) -> range:
    """The UDP ports a node's relay uses, as its start-up summary says."""
    found = re.search(r"UDP ports (\d+)-(\d+)", "".join(node.lines))
    assert found is not None, "no ICE port range in the start-up summary"
    return range(int(found[1]), int(found[2]) + 1)


def candidate_ports(sdp: str) -> set[int]:
    """The ports of the ICE candidates an SDP offers (where media is sent)."""
    return {int(m[1]) for m in re.finditer(r"a=candidate:\S+ \d+ udp \d+ \S+ (\d+)", sdp)}


def media_outside(sdp: str, ports: range) -> set[int]:
    """The candidate ports of ``sdp`` outside ``ports`` (empty: all media goes to that node)."""
    found = candidate_ports(sdp)
    assert found, "the SDP offers no candidate"
    return {port for port in found if port not in ports}


async def receives_frames(client: ParticipantClient, sender: str, count: int = 10) -> None:
    """Wait until ``client`` has received ``count`` video frames from ``sender``."""
    deadline = time.monotonic() + 60
    while True:
        stream = client.video_from(sender)
        if stream is not None and stream.frames >= count:
            return
        assert time.monotonic() < deadline, f"fewer than {count} frames within 60 s"
        await asyncio.sleep(0.05)


@dataclass
class TwoInACall:
    """Ada and Bea in a call on Redis nodes (:func:`ada_and_bea`)."""

    room_id: str
    ada: ParticipantClient
    bea: ParticipantClient
    more: list[ParticipantClient] = field(default_factory=list)
    """Clients that joined later (Bea and Ada again once their node went away, a newcomer):
    they leave on exit too."""


@contextlib.asynccontextmanager
async def ada_and_bea(
    ada_node: ServeProcess, bea_node: ServeProcess, client_ip: str
) -> AsyncIterator[TwoInACall]:
    """A room made on Bea's node; Ada joins through ``ada_node`` first (its node claims the
    room), then Bea through ``bea_node`` (forwarded there when it is another node); both receive
    each other's video. Everyone, ``more`` included, leaves on exit."""
    status, body = await create_room(bea_node, client_ip)
    assert status == 201, body
    room_id = body["id"]
    ada = ParticipantClient(ada_node.base_url, room_id, "Ada", video=PatternVideoTrack())
    bea = ParticipantClient(bea_node.base_url, room_id, "Bea", video=PatternVideoTrack())
    call = TwoInACall(room_id, ada, bea)
    try:
        await ada.join(timeout=30)
        await bea.join(timeout=30)
        assert ada.participant_id is not None and bea.participant_id is not None
        await receives_frames(bea, ada.participant_id)
        await receives_frames(ada, bea.participant_id)
        yield call
    finally:
        for client in [*call.more, bea, ada]:
            await client.close()


async def meet_again_through(node: ServeProcess, call: TwoInACall) -> None:
    """Bea and Ada join again through ``node`` by their sessions (their node is gone) and
    receive each other's video there, every ICE candidate one of ``node``'s ports."""
    bea_again = await join_through(node, call.room_id, "Bea", call.bea.session)
    call.more.append(bea_again)
    ada_again = await join_through(node, call.room_id, "Ada", call.ada.session)
    call.more.append(ada_again)
    assert ada_again.participant_id is not None and bea_again.participant_id is not None
    await receives_frames(bea_again, ada_again.participant_id)
    await receives_frames(ada_again, bea_again.participant_id)
    for client in (bea_again, ada_again):
        assert client.pc is not None and client.pc.remoteDescription is not None
        assert media_outside(client.pc.remoteDescription.sdp, ice_ports(node)) == set()


async def test_participants_entering_through_two_nodes_meet_on_the_rooms_node(
    nodes: tuple[ServeProcess, ServeProcess],
) -> None:
    """Ada enters through node A (which claims the room), Bea through node B: B forwards her
    signaling to A over Redis, both see each other's video, and every ICE candidate both are
    offered is one of node A's ports (media never goes through B)."""
    node_a, node_b = nodes
    async with ada_and_bea(node_a, node_b, "198.51.100.8") as call:
        for client in (call.ada, call.bea):
            assert client.pc is not None and client.pc.remoteDescription is not None
            sdp = client.pc.remoteDescription.sdp
            assert media_outside(sdp, ice_ports(node_a)) == set()
            # Test of the test: the same SDP judged against node B's ports is all outside.
            assert media_outside(sdp, ice_ports(node_b)) == candidate_ports(sdp)


async def websocket_refused(node: ServeProcess, room_id: str) -> int:
    """The HTTP status with which ``node`` refuses a newcomer's websocket to ``room_id`` (the
    test fails if it is accepted)."""
    newcomer = ParticipantClient(node.base_url, room_id, "Newcomer")
    try:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await newcomer.join(timeout=30)
        return refused.value.status
    finally:
        await newcomer.close()


async def frames_advance(client: ParticipantClient, sender: str, count: int = 20) -> None:
    """Wait until ``client`` receives ``count`` more video frames from ``sender``."""
    stream = client.video_from(sender)
    assert stream is not None
    await receives_frames(client, sender, stream.frames + count)


async def test_while_redis_is_away_calls_go_on_and_new_ones_wait(tmp_path: Path) -> None:
    """Redis killed under a node with a call in progress: the call's video keeps flowing and its
    page still loads; a new room answers 503 ``temporarily_unavailable``, a new link and a new
    websocket 503; once Redis is back, rooms are made again without restarting the node."""
    with running_redis(tmp_path / "redis") as redis_server:
        (tmp_path / "a").mkdir()
        settings = node_settings(0, MEETNOW_REDIS_URL=redis_server.url)
        with meetnow_serve(tmp_path / "a", **settings) as node:
            async with ada_and_bea(node, node, "198.51.100.9") as call:
                room_id, ada, bea = call.room_id, call.ada, call.bea
                assert ada.participant_id is not None
                redis_server.stop()
                await frames_advance(bea, ada.participant_id)
                assert await page_status(node, room_id, "198.51.100.9") == 200
                status, body = await create_room(node, "198.51.100.9")
                assert (status, body["error"]) == (503, "temporarily_unavailable"), body
                assert await page_status(node, new_room_id(), "198.51.100.9") == 503
                assert await websocket_refused(node, room_id) == 503
                await frames_advance(bea, ada.participant_id)

                redis_server.start()
                status, body = await create_room(node, "198.51.100.10")
                assert status == 201, body
                assert await page_status(node, body["id"], "198.51.100.10") == 200


async def join_through(
    node: ServeProcess, room_id: str, name: str, session: str
) -> ParticipantClient:
    """Join through ``node`` as ``session`` (a page reconnecting), trying again while the room's
    claim still names a node that just died (its websocket is closed at once, 1012)."""
    deadline = time.monotonic() + 60
    while True:
        client = ParticipantClient(
            node.base_url, room_id, name, session=session, video=PatternVideoTrack()
        )
        try:
            await client.join(timeout=10)
            return client
        except (TimeoutError, aiohttp.ClientError):
            await client.close()
            assert time.monotonic() < deadline, f"{name} could not join again within 60 s"


async def test_a_killed_rooms_node_moves_the_call_to_the_surviving_node(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Ada on node A (the room's node), Bea forwarded through node B. ``kill -9`` of A: B closes
    Bea's websocket with 1012 once A's heartbeat is gone; both join again through B with their
    sessions, B claims the room, and they see each other's video with B's ICE ports."""
    with two_nodes(tmp_path, MEETNOW_REDIS_URL=redis_server.url) as (node_a, node_b):
        async with ada_and_bea(node_a, node_b, "198.51.100.11") as call:
            claimed_by_a = await claim_of(redis_server, call.room_id)
            node_a.process.kill()
            node_a.process.wait(10)
            assert await call.bea.wait_closed(timeout=NODE_TTL_SECONDS + 30) == 1012
            await meet_again_through(node_b, call)
            claimed_by_b = await claim_of(redis_server, call.room_id)
            assert claimed_by_b is not None and claimed_by_b != claimed_by_a
