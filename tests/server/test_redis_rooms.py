"""Two nodes' room services over one real ``redis-server``: a room made on one opens on the
other with its hosts, lock and end, and a node never closes a room people are in on another."""

from __future__ import annotations

import secrets

import pytest

from signaling.errors import RoomGone, RoomLocked
from signaling.redis_rooms import SharedRoomService
from signaling.redis_store import RedisRoomStore
from signaling.rooms import RoomLimits, RoomService

from ..conftest import FakeClock
from ..support.redis_server import RedisServer


@pytest.fixture
def prefix() -> str:
    return f"test-{secrets.token_hex(4)}:"


def node(redis_server: RedisServer, prefix: str, clock: FakeClock) -> SharedRoomService:
    store = RedisRoomStore.from_url(redis_server.url, prefix)
    return SharedRoomService(RoomLimits(empty_grace_seconds=60), store=store, clock=clock)


async def test_a_room_made_on_one_node_opens_locks_and_ends_on_another(
    redis_server: RedisServer, prefix: str
) -> None:
    clock = FakeClock()
    node_a, node_b = node(redis_server, prefix, clock), node(redis_server, prefix, clock)
    await node_a.open()
    await node_b.open()
    room = node_a.create_room("Standup", lobby=True)
    token = node_a.issue_host_token(room)
    await node_a.flush()

    assert node_b.get_room(room.id) is None  # not fetched yet: only Redis knows it
    await node_b.fetch(room.id)
    copy = node_b.get_room(room.id)
    assert copy is not None and copy.topic == "Standup" and copy.lobby
    assert node_b.is_host_token(copy, token)

    node_a.set_locked(room, True)
    await node_a.flush()
    await node_b.fetch(room.id)
    with pytest.raises(RoomLocked):
        node_b.join(room.id, "New", "new-session")

    node_a.end(room)
    await node_a.flush()
    await node_b.fetch(room.id)
    assert node_b.get_room(room.id) is None and node_b.is_gone(room.id)
    with pytest.raises(RoomGone):
        node_b.join(room.id, "Ada", "ada")
    await node_a.close()
    await node_b.close()


async def room_survives_creator_sweep(creator: RoomService, other: SharedRoomService) -> bool:
    """Whether a room made on ``creator`` and joined on ``other`` is still open (in Redis) after
    the creator sweeps it past its unused-room TTL."""
    room = creator.create_room()
    await creator.flush()
    await other.fetch(room.id)
    other.join(room.id, "Ada", "ada")
    await other.flush()
    creator_clock = creator.now() + creator.limits.unused_ttl_seconds + 1
    assert isinstance(creator._clock, FakeClock)
    creator._clock.now = creator_clock
    assert room in creator.rooms()  # still held: the sweep decides
    creator.sweep()
    if isinstance(creator, SharedRoomService):
        assert creator._checks, "the sweep started no closing check: nothing was tested"
        await creator.settle()
    await creator.flush()
    return await other.shared.find_room(room.id) is not None


async def test_a_node_never_closes_a_room_people_are_in_on_another(
    redis_server: RedisServer, prefix: str
) -> None:
    creator = node(redis_server, prefix, FakeClock())
    other = node(redis_server, prefix, FakeClock())
    await creator.open()
    await other.open()
    assert await room_survives_creator_sweep(creator, other)
    await creator.close()
    await other.close()


async def test_the_survival_check_sees_a_node_that_closes_from_a_stale_copy(
    redis_server: RedisServer, prefix: str
) -> None:
    """Test of the test: a plain room service over the same Redis (no re-check before closing)
    deletes the room from its stale copy, and the check reports it."""
    store = RedisRoomStore.from_url(redis_server.url, prefix)
    creator = RoomService(RoomLimits(empty_grace_seconds=60), store=store, clock=FakeClock())
    other = node(redis_server, prefix, FakeClock())
    await creator.open()
    await other.open()
    assert not await room_survives_creator_sweep(creator, other)
    await creator.close()
    await other.close()


async def test_the_responsible_node_closes_a_due_room_for_every_node(
    redis_server: RedisServer, prefix: str
) -> None:
    clock = FakeClock()
    node_a, node_b = node(redis_server, prefix, clock), node(redis_server, prefix, clock)
    await node_a.open()
    await node_b.open()
    room = node_a.create_room()
    node_a.join(room.id, "Ada", "ada")
    node_a.leave(room, next(iter(room.participants)))
    clock.advance(61)  # past the empty grace
    node_a.sweep()
    await node_a.settle()
    assert await node_b.shared.find_room(room.id) is None
    await node_b.fetch(room.id)
    assert node_b.is_gone(room.id)
    await node_a.close()
    await node_b.close()


async def test_websockets_arriving_together_share_one_room_object_on_a_node(
    redis_server: RedisServer, prefix: str
) -> None:
    """Pages reconnecting at once after a drain each look the room up on the node they reach
    (``fetch`` then ``get_room``) before any of them has joined. Each fetch updates the one
    object the node has for the room, never replaces it: replaced, the pages joined copies of
    their own and never saw each other (the multinode benchmark's drain of 3 rooms of 4). A
    change made elsewhere meanwhile still reaches that object."""
    clock = FakeClock()
    node_a, node_b = node(redis_server, prefix, clock), node(redis_server, prefix, clock)
    await node_a.open()
    await node_b.open()
    room = node_a.create_room("Drained")
    await node_a.flush()

    await node_b.fetch(room.id)
    adas_copy = node_b.get_room(room.id)  # Ada's websocket looked it up
    node_a.set_locked(room, True)
    await node_a.flush()
    await node_b.fetch(room.id)
    beas_copy = node_b.get_room(room.id)  # Bea's, a moment later
    assert adas_copy is not None and adas_copy is beas_copy
    assert beas_copy.locked  # updated in place

    node_a.set_locked(room, False)
    await node_a.flush()
    await node_b.fetch(room.id)
    ada, _ = node_b.join(room.id, "Ada", "ada")
    bea, _ = node_b.join(room.id, "Bea", "bea")
    assert set(adas_copy.participants) == {ada.id, bea.id}
    await node_a.close()
    await node_b.close()
