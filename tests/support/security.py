"""Helpers of the threat tests (tests/security/): a real server on loopback, participants
that speak the protocol, and the round trip the negative checks wait on.

Nothing of ours is mocked: the servers are ``create_app`` on a real socket (or the real
``meetnow serve``, tests/support/serve_process.py), the clients real websockets and, where media
matters, real aiortc peers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from signaling.client import ParticipantClient, PatternVideoTrack, ToneAudioTrack
from signaling.rooms import RoomService
from signaling.server import create_app

from ..conftest import FakeClock, RunningServer, test_settings


@contextlib.asynccontextmanager
async def meetnow(
    clock: FakeClock | None = None, rooms: RoomService | None = None, **overrides: object
) -> AsyncIterator[RunningServer]:
    """The app ``meetnow serve`` runs, on a loopback port in this process (so tests can look at
    its state), the relay in this process unless ``relay_workers`` says otherwise. What the real
    process prints is tested on the real process (tests/security/test_security_logs.py)."""
    settings = test_settings(**overrides)
    app = create_app(settings, clock=clock or time.time, rooms=rooms)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    try:
        yield RunningServer(f"http://{settings.host}:{settings.port}", app, clock)
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def crowd() -> AsyncIterator[list[ParticipantClient]]:
    """Clients appended to the yielded list are closed at the end, whatever happened."""
    clients: list[ParticipantClient] = []
    try:
        yield clients
    finally:
        for client in clients:
            await client.close()


class SignalingOnly(ParticipantClient):
    """A participant that speaks the protocol but never opens a peer connection: offers are
    recorded, not answered. For tests about signaling alone (and TURN credentials, which an aiortc
    peer connection would try to use)."""

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "joined":
            self.joined = message
            self.participant_id = message["participant_id"]
            self.participants = {p["id"]: p for p in message["participants"]}
            self._joined_event.set()
        elif kind in ("participant_joined", "participant_updated"):
            self.participants[message["participant"]["id"]] = message["participant"]
        elif kind == "participant_left":
            self.participants.pop(message["participant_id"], None)
        elif kind == "error":
            self.errors.append(message)


async def reply(
    client: ParticipantClient, types: Iterable[str], *, since: int, timeout: float = 10.0
) -> dict[str, Any]:
    """The first message of one of ``types`` received after index ``since``."""
    wanted = set(types)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in client.messages[since:]:
            if message.get("type") in wanted:
                return message
        await asyncio.sleep(0.02)
    raise AssertionError(f"{client.name!r} got no {sorted(wanted)} within {timeout} s")


async def round_trip(client: ParticipantClient, timeout: float = 10.0) -> None:
    """Send ``ping`` and wait for its ``pong``: the barrier every negative check waits on.

    A connection handles its messages one at a time, in order, and the server writes to a socket
    in order, so once the ``pong`` is here the server has handled everything this client sent
    before it, and whatever it sent this client before answering has arrived too."""
    mark = len(client.messages)
    await client.send({"type": "ping"})
    await reply(client, {"pong"}, since=mark, timeout=timeout)


async def enter(
    client: ParticipantClient, *, host_token: str | None = None, timeout: float = 10.0
) -> dict[str, Any]:
    """Send ``join`` (with a host token if given) and return the answer: ``joined``, ``waiting``
    or ``error``."""
    if client._ws is None:
        await client.connect()
    mark = len(client.messages)
    join: dict[str, Any] = {
        "type": "join",
        "version": 1,
        "name": client.name,
        "session": client.session,
        "audio": client.audio is not None,
        "video": client.video is not None,
    }
    if host_token is not None:
        join["host_token"] = host_token
    await client.send(join)
    return await reply(client, {"joined", "waiting", "error"}, since=mark, timeout=timeout)


async def command(client: ParticipantClient, message: dict[str, Any]) -> int:
    """Send a message; returns the mark to look for its consequences after."""
    mark = len(client.messages)
    await client.send(message)
    return mark


async def refused(client: ParticipantClient, message: dict[str, Any], code: str) -> None:
    """``message`` gets the error ``code`` back (not fatal: the connection stays)."""
    mark = await command(client, message)
    error = await reply(client, {"error"}, since=mark)
    assert error["code"] == code, error
    assert error["fatal"] is False, error


@dataclass
class CreatedRoom:
    """What ``POST /api/rooms`` gave the creator."""

    id: str
    url: str
    host_url: str
    host_token: str


async def create_room(
    base_url: str, *, lobby: bool = False, topic: str | None = None
) -> CreatedRoom:
    body: dict[str, Any] = {"lobby": lobby}
    if topic is not None:
        body["topic"] = topic
    async with (
        aiohttp.ClientSession() as http,
        http.post(base_url + "/api/rooms", json=body) as response,
    ):
        assert response.status == 201
        data = await response.json()
    url, _, fragment = data["host_url"].partition("#")
    assert url == data["url"], "the host link is the shareable link plus a fragment"
    assert fragment.startswith("host=")
    return CreatedRoom(data["id"], data["url"], data["host_url"], fragment.removeprefix("host="))


def ws_url(base_url: str, room_id: str) -> str:
    return base_url.replace("http://", "ws://") + "/ws/" + room_id


def in_call_ids(running: RunningServer, room_id: str) -> set[str]:
    """Participant ids of the websockets in the call, as the hub sees them."""
    return {
        c.participant_id
        for c in running.meetnow.hub.connections(room_id)
        if c.in_call and c.participant_id is not None
    }


def media_client(
    base_url: str, room_id: str, name: str, *, decode: bool = True
) -> ParticipantClient:
    """A participant publishing a tone and a moving pattern, as aiortc encodes them.
    ``decode=False`` counts what arrives packet by packet, as it comes off the wire."""
    return ParticipantClient(
        base_url,
        room_id,
        name=name,
        audio=ToneAudioTrack(),
        video=PatternVideoTrack(),
        decode=decode,
    )
