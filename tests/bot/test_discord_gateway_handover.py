"""Discord's gateway held by one node at a time, and taken over (issue 16, many nodes): real
``meetnow serve`` processes on a real ``redis-server``, both logged in to the fake Discord.

Exactly one of them opens the gateway (the holder of the lease ``lease:discord-gateway``) and
answers ``/meetnow`` sent over it. ``kill -9`` of the holder: the fake sees its connection close,
the lease expires, the survivor takes it and opens the one gateway connection, and ``/meetnow``
is answered again. A clean stop (SIGTERM) of the holder lets go of the lease at once (Redis sees
it deleted, not expired) and the node waiting takes over (the release is shielded from the
shutdown's cancel of the gateway task, which used to leave the lease to expire). At no moment
are two gateway connections open (the fake keeps the most ever open at once).

Which process holds the gateway is read, not assumed: the fake records the client port of each
gateway websocket, and the process whose file descriptors include that socket is its owner
(``/proc``). Redis's keyspace notifications tell a lease that expired from one let go.

The tests of the test run the checkers on bad cases: two connections open, a connection owned by
another process than the one waited for, a lease key that expires instead of being deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from signaling.redis_lease import LEASE_RENEW_SECONDS, LEASE_TTL_SECONDS
from signaling.redis_store import connect, text_of

from ..fakes.discord import GUILD_ID, FakeDiscord, GatewayConnection
from ..server.test_redis_nodes import node_settings
from ..support.redis_server import RedisServer
from ..support.serve_process import STOP_TIMEOUT, ServeProcess, meetnow_serve

LEASE_KEY = "meetnow:lease:discord-gateway"
HANDOVER_BOUND_SECONDS = LEASE_TTL_SECONDS + LEASE_RENEW_SECONDS
"""signaling/redis_lease.py: a dead holder's lease is taken by another node within this."""
HANDOVER_DEADLINE_SECONDS = HANDOVER_BOUND_SECONDS + 30.0
"""The bound, plus the new holder's login and gateway connection on a loaded 2-core machine:
the test waits on the condition, this only stops it from hanging."""
ANSWER_TIMEOUT_SECONDS = 30.0
LEASE_EVENTS = ("set", "del", "expired")
"""Keyspace events that change who holds the lease (renewals, ``expire``, are left out)."""


# Who holds the gateway: a socket traced to its process through /proc -----------------------


def socket_inode(local_port: int, remote_port: int) -> int | None:
    """The inode of the IPv4 TCP socket from ``local_port`` to ``remote_port`` on this host."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], int(fields[9])
        if int(local.split(":")[1], 16) == local_port and int(remote.split(":")[1], 16) == (
            remote_port
        ):
            return inode
    return None


def owner_of(connection: GatewayConnection, server_port: int, pids: Iterable[int]) -> int | None:
    """Which of ``pids`` holds the client end of ``connection`` (None: none of them)."""
    inode = socket_inode(connection.peer[1], server_port)
    if inode is None:
        return None
    for pid in pids:
        with contextlib.suppress(OSError):  # the process or one of its descriptors just went
            for descriptor in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(descriptor) == f"socket:[{inode}]":
                        return pid
    return None


def the_one_gateway(fake: FakeDiscord) -> GatewayConnection:
    """The gateway connection open now, failing unless there is exactly one."""
    open_now = [c for c in fake.gateway_connections if c.closed_at is None]
    assert len(open_now) == 1, f"{len(open_now)} gateway connections open, not one"
    return open_now[0]


async def gateway_of(
    fake: FakeDiscord, pid: int, after: float, timeout: float
) -> GatewayConnection:
    """Wait until process ``pid`` has an identified gateway connection opened after ``after``
    (``time.monotonic()``), and return it."""

    def found() -> GatewayConnection | None:
        for connection in fake.gateway_connections:
            if (
                connection.closed_at is None
                and connection.identified_at is not None
                and connection.opened_at > after
                and owner_of(connection, fake.port, [pid]) == pid
            ):
                return connection
        return None

    result: GatewayConnection = await fake.wait_for(found, timeout=timeout)
    return result


# What Redis says about the lease -------------------------------------------------------------


class LeaseEvents:
    """The keyspace events of one key, as Redis publishes them (``notify-keyspace-events``)."""

    def __init__(self, redis_url: str, key: str) -> None:
        self.redis_url = redis_url
        self.key = key
        self.events: list[str] = []
        self._marker = f"test:marker:{key}"
        self._markers_seen = 0

    @contextlib.asynccontextmanager
    async def recording(self) -> AsyncIterator[LeaseEvents]:
        client = connect(self.redis_url)
        await client.config_set("notify-keyspace-events", "K$gx")
        pubsub = client.pubsub()
        await pubsub.subscribe(f"__keyspace@0__:{self.key}", self._marker)
        reader = asyncio.ensure_future(self._read(pubsub))
        self._client = client
        try:
            yield self
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            await client.aclose()

    async def _read(self, pubsub: Any) -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None:
                continue
            if text_of(message["channel"]) == self._marker:
                self._markers_seen += 1
            elif text_of(message["data"]) in LEASE_EVENTS:
                self.events.append(text_of(message["data"]))

    async def wait_for(self, expected: list[str], timeout: float) -> None:
        """Wait until the events seen are ``expected`` (the lease's history so far)."""
        deadline = time.monotonic() + timeout
        while self.events != expected:
            assert time.monotonic() < deadline, f"lease events {self.events}, not {expected}"
            await asyncio.sleep(0.05)

    async def settled(self, timeout: float = 10.0) -> list[str]:
        """Every event of the key up to now: a marker published now arrives on the same
        subscription after them (Redis delivers one connection's messages in order)."""
        wanted = self._markers_seen + 1
        await self._client.publish(self._marker, "now")
        deadline = time.monotonic() + timeout
        while self._markers_seen < wanted:
            assert time.monotonic() < deadline, "the marker never came back"
            await asyncio.sleep(0.02)
        return list(self.events)


# Nodes ---------------------------------------------------------------------------------------


class Nodes:
    """``meetnow serve`` processes started and stopped off the event loop (the fake Discord runs
    on it, and a blocking wait there would stall the gateway the nodes talk to)."""

    def __init__(self, directory: Path, **settings: str) -> None:
        self.directory = directory
        self.settings = settings
        self.stack = contextlib.ExitStack()
        self.count = 0

    async def start(self) -> ServeProcess:
        index, self.count = self.count, self.count + 1
        directory = self.directory / f"node{index}"
        directory.mkdir()
        serve = meetnow_serve(directory, **node_settings(index, **self.settings))
        node: ServeProcess = await asyncio.to_thread(self.stack.enter_context, serve)
        return node

    async def close(self) -> None:
        await asyncio.to_thread(self.stack.close)


def discord_settings(fake: FakeDiscord, redis_server: RedisServer) -> dict[str, str]:
    return {
        "MEETNOW_REDIS_URL": redis_server.url,
        "MEETNOW_DISCORD_API_URL": fake.api_url,
        "MEETNOW_DISCORD_TOKEN": fake.token,
        "MEETNOW_DISCORD_GUILD_IDS": str(GUILD_ID),
        "MEETNOW_RELAY_WORKERS": "0",  # no call here: spare the shared cores a worker each
    }


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    fake = await FakeDiscord().start()
    yield fake
    await fake.close()


async def meetnow_is_answered(fake: FakeDiscord) -> None:
    """``/meetnow`` over the gateway gets its card posted."""
    payload = await fake.send_interaction(topic="Standup")
    await fake.wait_for(lambda: fake.message_for(payload["token"]), ANSWER_TIMEOUT_SECONDS)


@pytest.fixture
async def nodes(
    fake: FakeDiscord, redis_server: RedisServer, tmp_path: Path
) -> AsyncIterator[Nodes]:
    nodes = Nodes(tmp_path, **discord_settings(fake, redis_server))
    try:
        yield nodes
    finally:
        await nodes.close()


@pytest.fixture
async def lease(redis_server: RedisServer) -> AsyncIterator[LeaseEvents]:
    """The lease's history, recorded from before any node starts."""
    async with LeaseEvents(redis_server.url, LEASE_KEY).recording() as events:
        yield events


async def holder_and_other(nodes: Nodes, fake: FakeDiscord) -> tuple[ServeProcess, ServeProcess]:
    """Two nodes started at once; exactly one opens the gateway, and ``/meetnow`` sent over it
    is answered. Returns (the process holding the gateway, the other one)."""
    first, second = await asyncio.gather(nodes.start(), nodes.start())
    pids = {first.process.pid: first, second.process.pid: second}
    await fake.wait_for(lambda: any(c.identified_at for c in fake.gateway_connections), 60)
    holder_pid = owner_of(the_one_gateway(fake), fake.port, pids)
    assert holder_pid is not None, "the gateway is held by neither node"
    holder = pids.pop(holder_pid)
    (other,) = pids.values()
    await meetnow_is_answered(fake)
    the_one_gateway(fake)  # the other node, up all along, opened none
    return holder, other


async def test_a_killed_holders_gateway_is_taken_over_by_the_survivor(
    nodes: Nodes, fake: FakeDiscord, lease: LeaseEvents
) -> None:
    """``kill -9`` of the holder: it lets go of nothing, its lease expires and the survivor
    takes it (within HANDOVER_BOUND_SECONDS of the last renewal), opens the gateway and
    answers ``/meetnow``; never two connections at once."""
    holder, survivor = await holder_and_other(nodes, fake)
    holding = the_one_gateway(fake)
    holder.process.kill()
    await asyncio.to_thread(holder.process.wait, STOP_TIMEOUT)
    killed_at = time.monotonic()
    await gateway_of(fake, survivor.process.pid, killed_at, HANDOVER_DEADLINE_SECONDS)
    assert holding.closed_at is not None
    assert the_one_gateway(fake) is not holding
    await meetnow_is_answered(fake)
    assert await lease.settled() == ["set", "expired", "set"]
    assert fake.most_gateways_at_once == 1


async def test_a_stopped_holder_lets_go_at_once_and_the_other_node_takes_over(
    nodes: Nodes, fake: FakeDiscord, lease: LeaseEvents
) -> None:
    """SIGTERM of the holder: it deletes its lease before it exits (Redis publishes ``del``,
    not ``expired``), and the other node takes the gateway without waiting for an expiry."""
    holder, other = await holder_and_other(nodes, fake)
    holding = the_one_gateway(fake)
    holder.process.terminate()
    await asyncio.to_thread(holder.process.wait, STOP_TIMEOUT)
    stopped_at = time.monotonic()
    assert holding.closed_at is not None
    assert (await lease.settled())[:2] == ["set", "del"]  # let go by the time it exited
    await gateway_of(fake, other.process.pid, stopped_at, HANDOVER_DEADLINE_SECONDS)
    await meetnow_is_answered(fake)
    assert await lease.settled() == ["set", "del", "set"]
    assert fake.most_gateways_at_once == 1


# Tests of the test -------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def raw_gateway(fake: FakeDiscord) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A gateway connection from this process, identified as the bot."""
    async with aiohttp.ClientSession() as http, http.ws_connect(fake.gateway_url) as ws:
        await ws.receive_json()  # HELLO
        await ws.send_json({"op": 2, "d": {"token": fake.token}})
        assert (await ws.receive_json())["t"] == "READY"
        yield ws


async def test_the_test_two_gateway_connections_are_seen_and_traced_to_their_process(
    fake: FakeDiscord,
) -> None:
    """Two connections open: "exactly one" fails and the high-water mark keeps the two after
    one closes; each is traced to this process, and to no other."""
    async with raw_gateway(fake):
        async with raw_gateway(fake):
            assert fake.connected_gateways == 2
            with pytest.raises(AssertionError, match="2 gateway connections open"):
                the_one_gateway(fake)
            for connection in fake.gateway_connections:
                assert owner_of(connection, fake.port, [os.getppid(), os.getpid()]) == os.getpid()
                assert owner_of(connection, fake.port, [os.getppid()]) is None
        await fake.wait_for(lambda: fake.connected_gateways == 1)
        the_one_gateway(fake)
    assert fake.most_gateways_at_once == 2


async def test_the_test_waiting_for_a_process_that_never_connects_fails(
    fake: FakeDiscord,
) -> None:
    """The one connection is this process's: waiting for it to be another's times out."""
    async with raw_gateway(fake):
        before = time.monotonic() - 60
        assert await gateway_of(fake, os.getpid(), before, 5)
        with pytest.raises(TimeoutError):
            await gateway_of(fake, os.getppid(), before, 0.5)


async def test_the_test_an_expired_lease_is_told_from_a_deleted_one(
    redis_server: RedisServer,
) -> None:
    client = connect(redis_server.url)
    try:
        async with LeaseEvents(redis_server.url, "test:lease").recording() as lease:
            await client.set("test:lease", "node-a", px=100)
            await lease.wait_for(["set", "expired"], 10)
            await client.set("test:lease", "node-b", px=60_000)
            await client.delete("test:lease")
            await lease.wait_for(["set", "expired", "set", "del"], 10)
            with pytest.raises(AssertionError, match="not"):
                await lease.wait_for(["set", "expired", "set", "expired"], 0.2)
            await client.set("test:lease", "node-c", px=60_000)
            assert await lease.settled() == ["set", "expired", "set", "del", "set"]
    finally:
        await client.aclose()
