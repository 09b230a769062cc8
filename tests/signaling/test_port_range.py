"""``MEETNOW_ICE_PORT_RANGE`` on the real ``meetnow serve``: every UDP socket of the server and its
relay workers lies in the range, a range of N ports holds N participants, and participant N+1
is refused with ``no_ports`` while the others keep their media."""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

import pytest

from signaling.client import ParticipantClient, PatternVideoTrack, ToneAudioTrack

from ..signaling.test_relay import receives_all, wait_until
from ..support.serve_process import ServeProcess, meetnow_serve

RANGE_SIZE = 3


def udp_ports_of(pid: int) -> list[int]:
    """Local ports of the UDP sockets process ``pid`` holds: its socket inodes (``/proc/PID/fd``)
    looked up in the kernel's UDP tables (``/proc/PID/net/udp`` and ``udp6``)."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = []
    for table in ("udp", "udp6"):
        for row in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            if fields[9] in inodes:
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def server_pids(main_pid: int) -> list[int]:
    """The server process and its children (the relay workers)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == main_pid:
                children.append(int(entry.name))
    return [main_pid, *children]


def relay_ports(server: ServeProcess) -> list[int]:
    return sorted(port for pid in server_pids(server.process.pid) for port in udp_ports_of(pid))


def free_range(size: int) -> tuple[int, int]:
    """``size`` consecutive UDP ports free on loopback, below the OS's ephemeral range (so no
    test client's socket can take one of them meanwhile)."""
    for _ in range(50):
        first = 20000 + secrets.randbelow(10000)
        socks = []
        try:
            for port in range(first, first + size):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return first, first + size - 1
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise AssertionError("no free port range found")


def test_the_socket_check_sees_a_socket_outside_the_range() -> None:
    """Test of the test: a UDP socket this process binds at an OS-chosen port is found, and
    found outside a range it is not in."""
    first, last = free_range(RANGE_SIZE)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        ports = udp_ports_of(os.getpid())
    assert port in ports
    assert [p for p in ports if not first <= p <= last] != []
    assert os.getpid() in server_pids(os.getppid())[1:]  # a child is found by its parent


def participant(server: ServeProcess, room_id: str, name: str) -> ParticipantClient:
    return ParticipantClient(
        server.base_url, room_id, name=name, audio=ToneAudioTrack(), video=PatternVideoTrack()
    )


async def create_room(server: ServeProcess) -> str:
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{server.base_url}/api/rooms", json={}) as response,
    ):
        assert response.status == 201
        room_id: str = (await response.json())["id"]
        return room_id


def frames_from(client: ParticipantClient, other: ParticipantClient) -> int:
    assert other.participant_id is not None
    video = client.video_from(other.participant_id)
    return 0 if video is None else video.frames


@pytest.mark.parametrize("workers", [0, 2], ids=["in-process", "two-workers"])
async def test_a_full_range_refuses_the_next_participant_and_the_call_goes_on(
    tmp_path: Path, workers: int
) -> None:
    first, last = free_range(RANGE_SIZE)
    in_range = range(first, last + 1)
    with meetnow_serve(
        tmp_path,
        MEETNOW_ICE_PORT_RANGE=f"{first}-{last}",
        MEETNOW_RELAY_WORKERS=str(workers),
    ) as server:
        server.wait_for_line("chat:", 10)
        assert any(f"room for {RANGE_SIZE} participants" in line for line in server.lines)
        # Two rooms, so with two workers each holds one: the range is shared between them.
        room, other_room = await create_room(server), await create_room(server)
        a, b = participant(server, room, "a"), participant(server, room, "b")
        c = participant(server, other_room, "c")
        late = participant(server, room, "late")
        try:
            for client in (a, c, b):
                await client.join()
            await wait_until(lambda: receives_all(a, [b], 10), 20, "a receives b")
            await wait_until(lambda: receives_all(b, [a], 10), 20, "b receives a")
            ports = relay_ports(server)
            assert len(ports) == RANGE_SIZE, ports  # one port per participant, bundle
            assert all(port in in_range for port in ports), (ports, first, last)

            await late.join()
            error = await late.next_message("error", 15, since=0)
            assert error["code"] == "no_ports" and error["fatal"] is True, error
            await late.wait_closed(10)
            assert all(port in in_range for port in relay_ports(server))

            # The others' media goes on: frames keep arriving after the refusal.
            before = frames_from(a, b), frames_from(b, a)
            await wait_until(lambda: frames_from(a, b) > before[0] + 15, 20, "a still gets b")
            await wait_until(lambda: frames_from(b, a) > before[1] + 15, 20, "b still gets a")

            # A port freed by someone leaving takes the next participant.
            await c.close()
            await wait_until(lambda: len(relay_ports(server)) < RANGE_SIZE, 10, "c's port free")
            again = participant(server, room, "again")
            try:
                await again.join()
                await wait_until(lambda: receives_all(again, [a, b], 10), 20, "again's media")
            finally:
                await again.close()
        finally:
            for client in (a, b, c, late):
                await client.close()
        if workers:
            assert server.process.poll() is None
