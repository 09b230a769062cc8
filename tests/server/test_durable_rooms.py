"""A restart of the real ``meetnow serve`` with its SQLite store (issue 16): stopped with Ctrl-C
and started again on the same port with the same data directory (the default one, under the
process's ``HOME``). Links open the same room, hosts are still hosts, lobby and lock hold, an
ended room answers 410, the websockets were closed with 1012 (never "room closed"), and a
Chromium page that was in the call comes back into it by itself, its video playing again."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
from playwright.async_api import Browser, Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from signaling.client import ParticipantClient, PatternVideoTrack
from signaling.sqlite_store import DATABASE_NAME

from ..conftest import free_port
from ..support.browser import browser, join, open_room, playing_now, wait_playing
from ..support.serve_process import (
    START_TIMEOUT,
    STOP_TIMEOUT,
    ServeProcess,
    clean_environment,
    meetnow_command,
)

__all__ = ["browser"]

SETTINGS = {"MEETNOW_ICE_HOST_ADDRESSES": "127.0.0.1", "MEETNOW_RELAY_WORKERS": "1"}
FRAMES_AGAIN = 10
"""Video frames a participant must receive after the restart for media to count as back."""


@contextlib.contextmanager
def serve_at(directory: Path, port: int, **settings: str) -> Iterator[ServeProcess]:
    """``meetnow serve --port PORT`` run from ``directory`` (its ``HOME`` too, so the default
    data directory is ``directory/.local/share/meetnow``); the same port each time, as a
    restarted server has, so pages reconnect to the same address."""
    env = clean_environment(directory, **{**SETTINGS, **settings})
    process = subprocess.Popen(
        [*meetnow_command(), "serve", "--port", str(port)],
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    running = ServeProcess(f"http://127.0.0.1:{port}", process)
    assert process.stdout is not None
    running.reader = threading.Thread(
        target=running.lines.extend, args=(process.stdout,), daemon=True
    )
    running.reader.start()
    try:
        running.wait_for_line("meetnow is running", START_TIMEOUT)
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(STOP_TIMEOUT)


async def create_room(base_url: str, lobby: bool = False) -> tuple[str, str]:
    """A room through the API: its id and host token."""
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base_url}/api/rooms", json={"lobby": lobby}) as response:
            assert response.status == 201, await response.text()
            body = await response.json()
    return body["id"], body["host_url"].split("#host=", 1)[1]


async def page_status(base_url: str, room_id: str) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base_url}/r/{room_id}") as response:
            return response.status


@contextlib.asynccontextmanager
async def participant(
    base_url: str, room_id: str, name: str, **options: object
) -> AsyncIterator[ParticipantClient]:
    client = ParticipantClient(base_url, room_id, name, video=PatternVideoTrack(), **options)  # type: ignore[arg-type]
    try:
        yield client
    finally:
        await client.close()


async def wait_frames(client: ParticipantClient, sender: str, count: int) -> None:
    """Wait until ``client`` has received ``count`` more video frames from ``sender``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    start: int | None = None
    while True:
        stream = client.video_from(sender)
        frames = stream.frames if stream is not None else 0
        start = frames if start is None else start
        if frames - start >= count:
            return
        if loop.time() > deadline:
            raise TimeoutError(f"{count} frames from {sender} not received: {frames}")
        await asyncio.sleep(0.05)


def stop(server: ServeProcess) -> str:
    output = server.stop()
    assert server.process.returncode == 0, output
    return output


async def test_a_restart_keeps_links_hosts_lobby_lock_and_ended_rooms(tmp_path: Path) -> None:
    port = free_port()
    with serve_at(tmp_path, port) as server:
        room_id, token = await create_room(server.base_url, lobby=True)
        ended_id, ended_token = await create_room(server.base_url)
        async with participant(server.base_url, ended_id, "Ender", host_token=ended_token) as ender:
            await ender.join()
            await ender.send({"type": "end_meeting"})
            await ender.wait_closed(10)
        assert await page_status(server.base_url, ended_id) == 410
        host = ParticipantClient(
            server.base_url, room_id, "Host", video=PatternVideoTrack(), host_token=token
        )
        guest = ParticipantClient(server.base_url, room_id, "Guest", video=PatternVideoTrack())
        try:
            assert (await host.join())["host"] is True
            knock = await guest.join(wait_for="waiting")
            assert knock["type"] == "waiting"
            await host.send(
                {
                    "type": "admit",
                    "participant_id": guest_id(host, await host.next_message("knock", 10, since=0)),
                }
            )
            await guest.next_message("joined", 15, since=0)
            await host.send({"type": "lock", "locked": True})
            await guest.next_message("room_updated", 10, since=0)
            assert host.participant_id is not None
            await wait_frames(guest, host.participant_id, FRAMES_AGAIN)
            stop(server)
            # Closed as "service restart", never told the meeting is over.
            assert await host.wait_closed(STOP_TIMEOUT) == 1012
            assert await guest.wait_closed(STOP_TIMEOUT) == 1012
            assert [
                m for m in [*host.messages, *guest.messages] if m["type"] == "room_closed"
            ] == []
        finally:
            await host.close()
            await guest.close()
    assert (tmp_path / ".local/share/meetnow" / DATABASE_NAME).is_file()

    with serve_at(tmp_path, port) as server:
        assert await page_status(server.base_url, room_id) == 200
        assert await page_status(server.base_url, ended_id) == 410
        async with (
            participant(server.base_url, room_id, "Host", session=host.session) as host_again,
            participant(server.base_url, room_id, "Guest", session=guest.session) as guest_again,
            participant(server.base_url, room_id, "Newcomer") as newcomer,
        ):
            # No token this time: the session alone is still a host's.
            assert (await host_again.join())["host"] is True
            # Admitted before the restart: past the lobby and the lock.
            joined = await guest_again.join()
            assert joined["room"]["locked"] is True and joined["room"]["lobby"] is True
            await newcomer.connect()
            await newcomer.send(
                {
                    "type": "join",
                    "name": "Newcomer",
                    "session": newcomer.session,
                    "audio": False,
                    "video": True,
                }
            )
            refusal = await newcomer.next_message("error", 10, since=0)
            assert refusal["code"] == "locked"
            assert host_again.participant_id is not None
            await wait_frames(guest_again, host_again.participant_id, FRAMES_AGAIN)
        stop(server)


def guest_id(host: ParticipantClient, knock: dict[str, object]) -> str:
    participant = knock["participant"]
    assert isinstance(participant, dict)
    return str(participant["id"])


async def page_in_call_across_restart(
    browser: Browser, directory: Path, timeout_s: float, **settings: str
) -> bool:
    """A Chromium page and a Python peer in a call, ``meetnow serve`` restarted: whether the page
    is back in the call by itself within ``timeout_s`` (playing the peer's video again, and the
    peer receiving the page's), nobody clicking anything."""
    port = free_port()
    with serve_at(directory, port, **settings) as server:
        room_id, _ = await create_room(server.base_url)
        page = await open_room(browser, f"{server.base_url}/r/{room_id}")
        await join(page, "Page")
        peer = ParticipantClient(server.base_url, room_id, "Peer", video=PatternVideoTrack())
        try:
            await peer.join()
            await wait_playing(page, 1)
            stop(server)
        finally:
            await peer.close()
        await wait_not_playing(page)
    try:
        with serve_at(directory, port, **settings) as server:
            async with participant(server.base_url, room_id, "Peer", session=peer.session) as back:
                await back.join()
                await wait_playing(page, 1, timeout_ms=int(timeout_s * 1000))
                page_id = next(iter(back.participants), None) or await page_participant(back)
                await wait_frames(back, page_id, FRAMES_AGAIN)
            stop(server)
        return True
    except (TimeoutError, PlaywrightTimeout, aiohttp.WSServerHandshakeError):
        return False
    finally:
        await page.context.close()


async def test_a_page_in_the_call_comes_back_into_it_by_itself(
    browser: Browser, tmp_path: Path
) -> None:
    assert await page_in_call_across_restart(browser, tmp_path, timeout_s=40)


async def test_the_restart_check_sees_a_page_that_does_not_come_back(
    browser: Browser, tmp_path: Path
) -> None:
    # The test of the test: rooms in memory end with the process, the page is told so and stays
    # on its "ended" screen. The check must say it is not back.
    assert not await page_in_call_across_restart(
        browser, tmp_path, timeout_s=8, MEETNOW_STORE="memory"
    )


async def wait_not_playing(page: Page) -> None:
    """Wait until the page shows no playing remote video (the server is down)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while await playing_now(page, 1):
        assert loop.time() < deadline, "the page still plays video with the server stopped"
        await asyncio.sleep(0.1)


async def page_participant(client: ParticipantClient) -> str:
    """The id of the page, once it rejoined after ``client``."""
    message = await client.next_message("participant_joined", 40, since=0)
    joined = message["participant"]
    assert isinstance(joined, dict)
    return str(joined["id"])


def test_an_unwritable_data_dir_stops_start_up_naming_the_variable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    result = run_serve(tmp_path, MEETNOW_DATA_DIR=str(blocker / "meetnow"))
    assert result.returncode == 1, result.stdout
    assert "MEETNOW_DATA_DIR: cannot write to" in result.stdout
    assert "Traceback" not in result.stdout


def test_a_corrupt_database_stops_start_up_and_is_left_as_it_was(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    garbage = b"not a database at all\n" * 500
    (data / DATABASE_NAME).write_bytes(garbage)
    result = run_serve(tmp_path, MEETNOW_DATA_DIR=str(data))
    assert result.returncode == 1, result.stdout
    assert "is not a usable meetnow database" in result.stdout
    assert "Traceback" not in result.stdout
    assert (data / DATABASE_NAME).read_bytes() == garbage


def run_serve(directory: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*meetnow_command(), "serve", "--port", str(free_port())],
        cwd=directory,
        env=clean_environment(directory, **{**SETTINGS, **settings}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )
