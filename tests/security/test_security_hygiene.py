"""Join/leave churn must not exhaust the server (docs/security.md, "Join/leave churn").

200 participants join a room one after another, publish video and audio, receive the one who stays,
and leave. The one who stays receives each of them, so the relay really forwards both ways. After
the churn the server holds exactly what it held before (peer connections, websockets, tasks), and
its memory grew by no more than a stated bound per cycle.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiortc import RTCPeerConnection

from signaling.client import ParticipantClient, PatternVideoTrack, ToneAudioTrack
from signaling.connection import ClientConnection
from signaling.loadtest import EncodedAudioTrack, EncodedMedia, EncodedVideoTrack, encode_media
from signaling.relay import Relay

from ..conftest import RunningServer
from ..signaling.test_relay import receives_all
from ..support.security import crowd, meetnow

CYCLES = 200
WARM_UP_CYCLES = 20
"""Cycles before the baseline: imports, codec tables, m-lines of the stayer's peer connection."""
RSS_KIB_PER_CYCLE = 64
"""Resident memory the process (server and clients alike) may grow by per cycle after warm-up,
measured after freed memory is handed back (``malloc_trim``). Measured on 2 busy cores: 5 to 25
KiB a cycle (heap fragmentation, and the room remembers every session that joined, for its
lifetime). One participant with video left behind (both peer connections, DTLS, SRTP, forwarding
state) costs about 900 KiB: the exact counts catch that, and this bound a leak of a tenth of it
every cycle."""
OBJECTS_PER_CYCLE = 2
"""Python objects (gc-tracked) the process may gain per cycle after warm-up (measured: under 1)."""
HEARTBEAT_SECONDS = 2.0
"""aiohttp keeps a closed websocket's objects until its heartbeat timer next fires (20 s by
default; its socket is closed at once): a short heartbeat lets the churn settle in seconds."""


@dataclass(frozen=True)
class Footprint:
    """What the process holds at one moment."""

    tasks: int
    peer_connections: int
    """``RTCPeerConnection`` objects alive, the server's and the clients' (this process)."""
    relay_sessions: int
    websockets: int
    """Connections in the server's hub."""
    connection_objects: int
    """``ClientConnection`` objects of this server alive (in the hub or not)."""
    websocket_objects: int
    """aiohttp ``WebSocketResponse`` objects alive (the server's side of each websocket)."""
    objects: int
    rss_kib: int


def in_process_relay(running: RunningServer) -> Relay:
    relay = running.meetnow.relay
    assert isinstance(relay, Relay)
    return relay


def footprint(running: RunningServer) -> Footprint:
    gc.collect()
    objects = gc.get_objects()
    relay = in_process_relay(running)
    return Footprint(
        tasks=len(asyncio.all_tasks()),
        peer_connections=sum(isinstance(o, RTCPeerConnection) for o in objects),
        relay_sessions=relay.peer_connection_count(),
        websockets=running.meetnow.hub.count(),
        connection_objects=sum(
            isinstance(o, ClientConnection) and o._server is running.meetnow for o in objects
        ),
        websocket_objects=sum(isinstance(o, web.WebSocketResponse) for o in objects),
        objects=len(objects),
        rss_kib=resident_kib(),
    )


def resident_kib() -> int:
    """Resident memory of this process, once the allocator has returned what it can (so freed
    memory kept in malloc's arenas is not taken for a leak)."""
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc
    if trim is not None:
        trim(0)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def growth(before: Footprint, after: Footprint, cycles: int) -> list[str]:
    """What grew beyond the bounds over ``cycles`` cycles: nothing, when nothing leaks."""
    problems = [
        f"{name}: {getattr(before, name)} -> {getattr(after, name)}"
        for name in (
            "tasks",
            "peer_connections",
            "relay_sessions",
            "websockets",
            "connection_objects",
            "websocket_objects",
        )
        if getattr(after, name) != getattr(before, name)
    ]
    if after.objects - before.objects > OBJECTS_PER_CYCLE * cycles:
        problems.append(f"objects: {before.objects} -> {after.objects} in {cycles} cycles")
    if after.rss_kib - before.rss_kib > RSS_KIB_PER_CYCLE * cycles:
        problems.append(f"RSS: {before.rss_kib} -> {after.rss_kib} KiB in {cycles} cycles")
    return problems


async def promptly(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait until ``predicate()`` holds, looking every 5 ms: 400 waits a run add up."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.005)


class Churn:
    """One room with a participant who stays, and participants who come and go."""

    def __init__(self, running: RunningServer, room_id: str, stayer: ParticipantClient) -> None:
        self.running, self.room_id, self.stayer = running, room_id, stayer
        # Cyclers publish a pre-encoded loop (no encoder per cycle: the server is under test).
        self.media: EncodedMedia = encode_media(320, 240, seconds=1.0, bitrate=300_000)

    async def join(self, index: int) -> ParticipantClient:
        """A newcomer with video and audio, once media flows both ways through the relay."""
        cycler = ParticipantClient(
            self.running.base_url,
            self.room_id,
            name=f"cycler {index}",
            audio=EncodedAudioTrack(self.media),
            video=EncodedVideoTrack(self.media),
            decode=False,
        )
        await cycler.join()
        await promptly(
            lambda: (
                receives_all(self.stayer, [cycler], 2) and receives_all(cycler, [self.stayer], 2)
            ),
            10,
            f"media both ways with cycler {index}",
        )
        return cycler

    async def leave(self, cycler: ParticipantClient) -> None:
        await cycler.close()
        # The stayer's count of what it received from this one is the test's, not the server's.
        for kind in ("audio", "video"):
            self.stayer.streams.pop((cycler.participant_id or "", kind), None)
        self.stayer.messages.clear()  # the test client's log of offers, not the server's memory
        server, relay = self.running.meetnow, in_process_relay(self.running)
        await promptly(
            lambda: server.hub.count() == 1 and relay.peer_connection_count() == 1,
            10,
            "the leave",
        )

    async def cycle(self, index: int) -> None:
        await self.leave(await self.join(index))


async def settled(running: RunningServer, tasks: int | None = None) -> Footprint:
    """The footprint once the last leave has finished: its peer connections are closed and
    collected, and (given ``tasks``) no more tasks run than that. A state that comes about, waited
    for with a deadline."""
    deadline = time.monotonic() + 10
    while True:
        now = footprint(running)
        done = (now.peer_connections, now.connection_objects, now.websocket_objects) == (2, 1, 1)
        if done and (tasks is None or now.tasks <= tasks):
            return now
        assert time.monotonic() < deadline, f"the last leave never finished: {now}"
        await asyncio.sleep(0.1)


async def test_200_join_leave_cycles_with_video_leave_nothing_behind() -> None:
    async with (
        meetnow(relay_workers=0, ws_heartbeat_seconds=HEARTBEAT_SECONDS) as running,
        crowd() as clients,
    ):
        room_id = running.new_room()
        stayer = ParticipantClient(
            running.base_url,
            room_id,
            name="stayer",
            audio=ToneAudioTrack(),
            video=PatternVideoTrack(),
            decode=False,
        )
        clients.append(stayer)
        await stayer.join()
        churn = Churn(running, room_id, stayer)
        for index in range(WARM_UP_CYCLES):
            await churn.cycle(index)
        # The stayer's peer connection and the relay's for it; its websocket.
        baseline = await settled(running)
        assert (baseline.relay_sessions, baseline.websockets) == (1, 1)

        for index in range(CYCLES):
            await churn.cycle(WARM_UP_CYCLES + index)
        after = await settled(running, baseline.tasks)
        print(  # what the bounds below are checked against
            f"{CYCLES} join/leave cycles with video: RSS "
            f"{(after.rss_kib - baseline.rss_kib) / CYCLES:+.1f} KiB/cycle, objects "
            f"{(after.objects - baseline.objects) / CYCLES:+.2f}/cycle"
        )
        assert growth(baseline, after, CYCLES) == []
        room = running.meetnow.rooms.get_room(room_id)
        assert room is not None and set(room.participants) == {stayer.participant_id}

        # The same checks see one participant left behind...
        extra = await churn.join(CYCLES + WARM_UP_CYCLES)
        clients.append(extra)
        with_extra = footprint(running)
        assert set(growth(after, with_extra, 1)) >= {
            "peer_connections: 2 -> 4",
            "relay_sessions: 1 -> 2",
            "websockets: 1 -> 2",
            "connection_objects: 1 -> 2",
            "websocket_objects: 1 -> 2",
        }
        # ...and memory kept at twice the bound, over as many cycles.
        kept = b"\x01" * (2 * RSS_KIB_PER_CYCLE * CYCLES * 1024)  # written, so resident
        problems = growth(with_extra, footprint(running), CYCLES)
        del kept
        assert [p for p in problems if p.startswith("RSS")] != [], problems
