"""Message floods on the signaling websocket, counted exactly (threat 5 of docs/security.md).

Each websocket may send bursts of 60 messages and 20 a second sustained (``MESSAGE_BUCKET``); the
first refusal is answered ``rate_limited``; 100 refusals within 10 s close the socket with 1008.
The server runs on a clock that moves only when the test moves it (tests/support/stepped_clock.py),
so every count below is exact, and seconds of flooding take milliseconds. A last test floods in
real time, as fast as a client can.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from signaling.connection import FLOOD_REFUSALS, FLOOD_WINDOW_SECONDS, MESSAGE_BUCKET
from signaling.limits import Bucket

from ..support.security import SignalingOnly, crowd, enter, meetnow, reply, round_trip
from ..support.stepped_clock import RawSocket, SteppedServer, stepped_server

BURST = 60
RATE = 20
REFILL_SECONDS = BURST / RATE
"""Idle time after which a socket's bucket is full again."""


def test_the_limits_tested_here_are_the_ones_the_server_uses_and_docs_state() -> None:
    assert MESSAGE_BUCKET == Bucket(burst=BURST, per_second=RATE)
    assert (FLOOD_REFUSALS, FLOOD_WINDOW_SECONDS) == (100, 10.0)
    page = (Path(__file__).resolve().parent.parent.parent / "docs" / "security.md").read_text(
        "utf-8"
    )
    row = next(line for line in page.splitlines() if line.startswith("| Websocket messages |"))
    assert "bursts of 60, 20 a second; 100 refusals within 10 s close the connection" in row


async def joined_socket(server: SteppedServer, room_id: str, name: str) -> RawSocket:
    """A participant in the call whose bucket is full (joining spent a token; a pause refills)."""
    socket = await RawSocket.open(server.base_url, room_id)
    await socket.join(name)
    server.advance(REFILL_SECONDS)
    return socket


async def new_room(server: SteppedServer) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(server.base_url + "/api/rooms") as response,
    ):
        assert response.status == 201
        room_id: str = (await response.json())["id"]
        return room_id


async def test_a_burst_gets_exactly_60_answers_and_the_100th_refusal_closes_it_1008() -> None:
    async with stepped_server() as server:
        room_id = await new_room(server)
        bystander = await joined_socket(server, room_id, "bystander")
        flooder = await joined_socket(server, room_id, "flooder")
        try:
            # 60 + 99 pings at one instant: 60 answered, 99 refused, the first refusal said.
            await flooder.send_pings(BURST + FLOOD_REFUSALS - 1)
            await flooder.barrier()
            assert flooder.count("pong") == BURST
            errors = [m for m in flooder.received if m["type"] == "error"]
            assert [(e["code"], e["fatal"]) for e in errors] == [("rate_limited", False)]
            assert flooder.close_code is None
            # The 100th refusal closes the socket.
            await flooder.send_pings(1)
            await flooder.barrier()
            assert flooder.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION
            assert flooder.count("pong") == BURST

            # The bystander saw the flooder leave, and nothing else; its own bucket is whole.
            await bystander.send_pings(BURST)
            await bystander.barrier()
            assert bystander.count("pong") == BURST
            assert bystander.count("participant_left") == 1
            assert bystander.count("error") == 0 and bystander.close_code is None
        finally:
            await flooder.close()
            await bystander.close()


async def test_a_socket_at_exactly_the_sustained_rate_is_never_refused() -> None:
    async with stepped_server() as server:
        room_id = await new_room(server)
        talker = await joined_socket(server, room_id, "talker")
        try:
            await talker.send_pings(BURST)  # the burst, spent
            await talker.barrier()
            for _ in range(30):  # 30 s at 20 a second, starting from an empty bucket
                server.advance(1.0)
                await talker.send_pings(RATE)
                await talker.barrier()
            assert talker.count("pong") == BURST + 30 * RATE
            assert talker.count("error") == 0 and talker.close_code is None

            # One message a second more, and exactly that one is refused (and said once).
            for second in range(3):
                server.advance(1.0)
                await talker.send_pings(RATE + 1)
                await talker.barrier()
                assert talker.count("pong") == BURST + (31 + second) * RATE
                assert talker.count("error") == 1
            assert talker.close_code is None
        finally:
            await talker.close()


@pytest.mark.parametrize(
    ("per_second", "closed_after_seconds", "windows"),
    [
        # 10 refused a second: the 100th refusal comes 9 s after the first, inside the window.
        (RATE + 10, 10, 1),
        # 9 refused a second: at most 99 in a window (its first refusal at 1 s, then 12 s, then
        # 23 s), so refused forever but never closed.
        (RATE + 9, None, 3),
    ],
)
async def test_a_slow_flood_is_closed_once_it_collects_100_refusals_within_10_seconds(
    per_second: int, closed_after_seconds: int | None, windows: int
) -> None:
    async with stepped_server() as server:
        room_id = await new_room(server)
        bystander = await joined_socket(server, room_id, "bystander")
        flooder = await joined_socket(server, room_id, "flooder")
        try:
            await flooder.send_pings(BURST)
            await flooder.barrier()
            seconds = 0
            while flooder.close_code is None and seconds < 25:
                seconds += 1
                server.advance(1.0)
                await flooder.send_pings(per_second)
                await flooder.barrier()
                # Every second, the sustained rate is answered and the rest refused.
                assert flooder.count("pong") == BURST + seconds * RATE
            refusals = seconds * (per_second - RATE)
            if closed_after_seconds is None:
                assert flooder.close_code is None and refusals > 2 * FLOOD_REFUSALS
            else:
                assert seconds == closed_after_seconds
                assert flooder.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION
                assert refusals == FLOOD_REFUSALS
            # The first refusal of each 10 s window is answered, the rest silently dropped.
            errors = [(e["code"], e["fatal"]) for e in flooder.received if e["type"] == "error"]
            assert errors == [("rate_limited", False)] * windows
            await bystander.barrier()
            assert bystander.count("participant_left") == (0 if closed_after_seconds is None else 1)
            assert bystander.count("error") == 0 and bystander.close_code is None
        finally:
            await flooder.close()
            await bystander.close()


async def test_a_flood_as_fast_as_a_client_can_send_is_closed_1008_and_the_others_stay() -> None:
    async with meetnow() as running, crowd() as clients:
        room_id = running.new_room()
        flooder = SignalingOnly(running.base_url, room_id, name="flooder")
        others = [SignalingOnly(running.base_url, room_id, name=n) for n in ("x", "y")]
        clients.extend([flooder, *others])
        for client in others:
            assert (await enter(client))["type"] == "joined"
        assert (await enter(flooder))["type"] == "joined"
        marks = [len(c.messages) for c in others]
        sent = 0
        deadline = time.monotonic() + 20
        while flooder.close_code is None and time.monotonic() < deadline:
            try:
                await flooder.send_raw('{"type": "ping"}')
            except (ConnectionError, RuntimeError):
                break
            sent += 1
            if sent % 500 == 0:
                await asyncio.sleep(0)  # the server runs in this loop: let it read
        assert await flooder.wait_closed(10) == aiohttp.WSCloseCode.POLICY_VIOLATION
        assert [e["code"] for e in flooder.errors] == ["rate_limited"]
        for client, mark in zip(others, marks, strict=True):
            left = await reply(client, {"participant_left"}, since=mark)
            assert left["participant_id"] == flooder.participant_id
            await round_trip(client)
            assert client.errors == [] and client.close_code is None
        room = running.meetnow.rooms.get_room(room_id)
        assert room is not None
        assert set(room.participants) == {c.participant_id for c in others}
        assert sent >= BURST + FLOOD_REFUSALS
