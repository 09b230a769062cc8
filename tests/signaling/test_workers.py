"""Relay worker processes: rooms pinned to workers, media through them, a crashed worker."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator

import aiohttp
import pytest

from signaling.client import ParticipantClient, PatternVideoTrack, ToneAudioTrack
from signaling.workers import WorkerPool

from ..conftest import RunningServer, start_server, test_settings
from ..signaling.test_relay import receives_all, wait_until


@pytest.fixture
async def two_worker_server() -> AsyncIterator[RunningServer]:
    running, runner = await start_server(test_settings(relay_workers=2))
    yield running
    await runner.cleanup()


def pool(server: RunningServer) -> WorkerPool:
    relay = server.meetnow.relay
    assert isinstance(relay, WorkerPool)
    return relay


def media_client(server: RunningServer, room_id: str, name: str) -> ParticipantClient:
    return ParticipantClient(
        server.base_url, room_id, name=name, audio=ToneAudioTrack(), video=PatternVideoTrack()
    )


async def test_rooms_are_pinned_to_different_workers_and_media_flows_through_them(
    two_worker_server: RunningServer,
) -> None:
    server = two_worker_server
    workers = pool(server)
    assert len(workers.worker_pids()) == 2
    rooms = [server.new_room(), server.new_room()]
    clients = {
        room: [media_client(server, room, f"{room[:4]}-{i}") for i in range(2)] for room in rooms
    }
    try:
        for members in clients.values():
            for client in members:
                await client.join()
        for members in clients.values():
            a, b = members
            await wait_until(lambda a=a, b=b: receives_all(a, [b], 15), 20, "media")
            await wait_until(lambda a=a, b=b: receives_all(b, [a], 15), 20, "media")
        pids = {room: workers.room_worker_pid(room) for room in rooms}
        # The two rooms went to the two workers, none to the main process.
        assert set(pids.values()) == set(workers.worker_pids())
        assert os.getpid() not in pids.values()
        stats = await workers.stats()
        assert sorted(s.peer_connections for s in stats) == [2, 2]
    finally:
        for members in clients.values():
            for client in members:
                await client.close()
    await wait_until(lambda: workers.room_worker_pid(rooms[0]) is None, 5, "room unpinned")
    assert sorted(s.peer_connections for s in await workers.stats()) == [0, 0]


async def test_a_crashed_worker_disconnects_only_its_rooms_and_comes_back(
    two_worker_server: RunningServer,
) -> None:
    server = two_worker_server
    workers = pool(server)
    doomed_room, safe_room = server.new_room(), server.new_room()
    doomed = [media_client(server, doomed_room, f"d{i}") for i in range(2)]
    safe = [media_client(server, safe_room, f"s{i}") for i in range(2)]
    try:
        for client in [*doomed, *safe]:
            await client.join()
        await wait_until(lambda: receives_all(safe[0], [safe[1]], 10), 20, "safe media")
        doomed_pid = workers.room_worker_pid(doomed_room)
        assert doomed_pid is not None and doomed_pid != workers.room_worker_pid(safe_room)
        os.kill(doomed_pid, signal.SIGKILL)
        for client in doomed:
            assert await client.wait_closed(timeout=10) == aiohttp.WSCloseCode.INTERNAL_ERROR
        # The other room never noticed.
        assert safe[1].participant_id is not None
        stream = safe[0].video_from(safe[1].participant_id)
        assert stream is not None
        before = stream.frames
        await asyncio.sleep(1.0)
        assert stream.frames > before + 10
        assert safe[0].close_code is None and safe[0].errors == []
        # A replacement worker is up; the doomed room's people rejoin and see each other again.
        await wait_until(lambda: doomed_pid not in workers.worker_pids(), 10, "worker restart")
        again = [media_client(server, doomed_room, f"r{i}") for i in range(2)]
        try:
            for client in again:
                await client.join()
            await wait_until(lambda: receives_all(again[0], [again[1]], 10), 20, "media again")
        finally:
            for client in again:
                await client.close()
    finally:
        for client in [*doomed, *safe]:
            await client.close()
