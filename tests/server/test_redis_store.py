"""The Redis room store against a real ``redis-server``: under the room service it keeps what
the SQLite store keeps across a restart, and two services ("nodes") on one Redis see each
other's rooms, tombstones and chat values, with nothing left behind when a room closes."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from signaling.errors import RoomGone, RoomLocked
from signaling.redis_store import RedisRoomStore, text_of
from signaling.room_store import StoreError, record_of
from signaling.rooms import RoomLimits, RoomService
from signaling.settings import Settings
from signaling.startup import rooms_summary
from signaling.tombstones import secret_key

from ..conftest import FakeClock
from ..support.redis_server import RedisServer, running_redis

TOPIC = "Quarterly-secret-topic-7f3a"


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own (tests share one redis-server)."""
    return f"test-{secrets.token_hex(4)}:"


def store(redis_server: RedisServer, prefix: str) -> RedisRoomStore:
    return RedisRoomStore.from_url(redis_server.url, prefix)


def service(redis_server: RedisServer, prefix: str, clock: FakeClock) -> RoomService:
    return RoomService(
        RoomLimits(empty_grace_seconds=60), clock=clock, store=store(redis_server, prefix)
    )


async def keys_under(redis_server: RedisServer, prefix: str) -> list[str]:
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        return sorted(text_of(k) for k in await client.keys(f"{prefix}*"))
    finally:
        await client.aclose()


async def test_a_restart_keeps_settings_hosts_and_tombstones(
    redis_server: RedisServer, prefix: str
) -> None:
    clock = FakeClock()
    rooms = service(redis_server, prefix, clock)
    await rooms.open()
    room = rooms.create_room(TOPIC, lobby=True, lifetime_seconds=3600)
    token = rooms.issue_host_token(room)
    rooms.join(room.id, "Host", "host-session", host_token=token)
    rooms.set_locked(room, True)
    ended = rooms.create_room()
    rooms.join(ended.id, "Ada", "ada")
    rooms.end(ended)
    await rooms.close()

    rooms = service(redis_server, prefix, clock)
    await rooms.open()
    back = rooms.get_room(room.id)
    assert back is not None and (back.topic, back.lobby, back.locked) == (TOPIC, True, True)
    assert rooms.is_host_token(back, token)
    assert rooms.join(room.id, "Host", "host-session")[0].host
    with pytest.raises(RoomLocked):
        rooms.join(room.id, "New", "new-session")
    assert rooms.is_gone(ended.id)
    with pytest.raises(RoomGone):
        rooms.join(ended.id, "Ada", "ada")
    await rooms.close()


async def test_two_nodes_see_each_others_rooms_and_tombstones(
    redis_server: RedisServer, prefix: str
) -> None:
    clock = FakeClock()
    node_a = service(redis_server, prefix, clock)
    node_b = store(redis_server, prefix)
    await node_a.open()
    room = node_a.create_room(TOPIC)
    token = node_a.issue_host_token(room)
    await node_a.flush()

    found = await node_b.find_room(room.id)
    assert found == record_of(room) and secret_key(token) in found.host_keys
    assert await node_b.find_room("no-such-room") is None
    assert await node_b.buried_until(secret_key(room.id)) is None

    node_a.end(room)
    await node_a.flush()
    assert await node_b.find_room(room.id) is None
    until = await node_b.buried_until(secret_key(room.id))
    assert until == clock.now + RoomLimits().tombstone_seconds
    await node_b.forget_tombstones(until)
    assert await node_b.buried_until(secret_key(room.id)) is None
    await node_a.close()
    await node_b.close()


async def test_chat_values_live_and_die_with_their_room(
    redis_server: RedisServer, prefix: str
) -> None:
    clock = FakeClock()
    rooms = service(redis_server, prefix, clock)
    await rooms.open()
    kept, closed = rooms.create_room(), rooms.create_room()
    rooms.remember(kept.id, "slack", "card-1")
    rooms.remember(closed.id, "slack", "card-2")
    assert await rooms.remembered("slack") == {kept.id: "card-1", closed.id: "card-2"}
    rooms.end(closed)
    rooms.end(kept)
    await rooms.flush()
    other = store(redis_server, prefix)
    # A late value for a room another node already deleted is not kept.
    await other.put_chat_value(closed.id, "slack", "late")
    assert await other.chat_values("slack") == {}
    # Nothing of the closed rooms is left but the tombstones (hashes, not ids).
    assert await keys_under(redis_server, prefix) == [f"{prefix}tombstones"]
    await other.close()
    await rooms.close()


async def test_a_room_nobody_joined_carries_its_expiry_in_redis(
    redis_server: RedisServer, prefix: str
) -> None:
    clock = FakeClock(start=time.time())
    rooms = service(redis_server, prefix, clock)
    await rooms.open()
    unused, joined = rooms.create_room(lifetime_seconds=600), rooms.create_room()
    rooms.join(joined.id, "Ada", "ada")
    await rooms.flush()
    client = aioredis.Redis.from_url(redis_server.url)
    unused_ttl = await client.ttl(f"{prefix}room:{unused.id}")
    joined_ttl = await client.ttl(f"{prefix}room:{joined.id}")
    await client.aclose()
    assert 590 <= unused_ttl <= 602
    assert joined_ttl == -1  # people came: only a node closes it (grace, end), never Redis
    await rooms.close()


def test_a_malformed_url_is_refused_naming_the_variable() -> None:
    with pytest.raises(StoreError, match="MEETNOW_REDIS_URL"):
        RedisRoomStore.from_url("http://not-redis/")


def test_the_test_redis_server_is_ours_and_stops(tmp_path: Path) -> None:
    """The support's PING probe says no once the server is stopped (it could otherwise pass
    every test against some other Redis)."""
    with running_redis(tmp_path) as server:
        assert server.answers()
    assert not server.answers()


def test_the_startup_summary_names_redis_without_its_password() -> None:
    settings = Settings(redis_url=SecretStr("redis://:hunter2-secret@10.0.0.5:6380/2"))
    line = rooms_summary(settings)
    assert line.startswith("Redis at 10.0.0.5:6380/2 (MEETNOW_REDIS_URL), shared with every node")
    # Only what this version shares and forwards, and what it does not do yet.
    assert "websockets that land on another node are forwarded there" in line
    assert "a node told to stop (SIGTERM) lets go of its rooms" in line
    assert line.endswith(
        "a chat gateway that must be single runs on one node at a time (another takes over within 6 s)"
    )
    assert "hunter2" not in line and "hunter2" not in repr(settings)
    assert rooms_summary(Settings(store="memory")).startswith("in memory")
