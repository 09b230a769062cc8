"""The threat model, one test (at least) per threat: war-dialled ids, link previews, cross-site
websockets, oversized messages and floods, zoombombing (lock, cap, remove, lobby, host tokens),
expiry, TURN credentials, logs, honest encryption claims and resource hygiene.

Every test runs the real server on loopback (as ``meetnow serve`` runs it) with real websocket
clients; nothing of ours is mocked. Where a clock matters it is injected (the room service's or the
rate limiter's), never patched. ``docs/security.md`` maps each threat to these tests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiortc import RTCPeerConnection

from signaling.client import ParticipantClient, PatternVideoTrack, ToneAudioTrack
from signaling.connection import ClientConnection
from signaling.limits import ServerLimits
from signaling.rooms import RoomService, new_room_id
from signaling.server import create_app, room_limits

from .conftest import FakeClock, RunningServer, test_settings
from .test_relay import receives_all, wait_until

ROOT = Path(__file__).resolve().parent.parent
DAY = 24 * 3600


# ------------------------------------------------------------------------------------ helpers


@contextlib.asynccontextmanager
async def meetnow(
    clock: FakeClock | None = None, rooms: RoomService | None = None, **overrides: object
) -> AsyncIterator[RunningServer]:
    """A real server on a loopback port, run as ``meetnow serve`` runs it: no access log (request
    paths carry room ids), the relay in this process unless ``relay_workers`` says otherwise."""
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
    running: RunningServer, *, lobby: bool = False, topic: str | None = None
) -> CreatedRoom:
    body: dict[str, Any] = {"lobby": lobby}
    if topic is not None:
        body["topic"] = topic
    async with (
        aiohttp.ClientSession() as http,
        http.post(running.base_url + "/api/rooms", json=body) as response,
    ):
        assert response.status == 201
        data = await response.json()
    url, _, fragment = data["host_url"].partition("#")
    assert url == data["url"], "the host link is the shareable link plus a fragment"
    assert fragment.startswith("host=")
    return CreatedRoom(data["id"], data["url"], data["host_url"], fragment.removeprefix("host="))


def ws_url(running: RunningServer, room_id: str) -> str:
    return running.base_url.replace("http://", "ws://") + "/ws/" + room_id


def in_call_ids(running: RunningServer, room_id: str) -> set[str]:
    """Participant ids of the websockets in the call, as the hub sees them."""
    return {
        c.participant_id
        for c in running.meetnow.hub.connections(room_id)
        if c.in_call and c.participant_id is not None
    }


def media_client(running: RunningServer, room_id: str, name: str) -> ParticipantClient:
    return ParticipantClient(
        running.base_url, room_id, name=name, audio=ToneAudioTrack(), video=PatternVideoTrack()
    )


# ------------------------------------------------------------ 1. war-dialling (Zoom, 2020)


def random_ids(count: int) -> list[str]:
    """What a war-dialler tries: our id format, and Zoom-style 9-11 digit numbers."""
    ids = []
    for i in range(count):
        if i % 4 == 3:
            ids.append(str(secrets.randbelow(10**11 - 10**8) + 10**8))
        else:
            ids.append(new_room_id())
    return ids


async def test_war_dialling_1000_random_ids_finds_nothing_and_then_sees_only_429() -> None:
    # The rate limiter's clock stands still: the whole sweep happens "at once", so the numbers
    # are exact (the default bucket: 20 unknown lookups, then 20 a minute).
    clock = FakeClock(0.0)
    async with meetnow(trust_forwarded_for=True) as running:
        running.meetnow.limits = ServerLimits(clock=clock)
        burst = int(running.meetnow.limits.unknown_lookups.bucket.burst)
        real = running.new_room()
        sweeper = {"X-Forwarded-For": "203.0.113.7"}
        colleague = {"X-Forwarded-For": "198.51.100.9"}
        async with aiohttp.ClientSession() as http:
            async with http.get(
                running.base_url + "/r/" + new_room_id(), headers={"X-Forwarded-For": "192.0.2.1"}
            ) as response:
                assert response.status == 404
                the_404 = await response.read()
            answers: list[tuple[int, bytes]] = []
            for room_id in random_ids(1000):
                async with http.get(
                    running.base_url + "/r/" + room_id, headers=sweeper
                ) as response:
                    answers.append((response.status, await response.read()))
            statuses = [status for status, _ in answers]
            assert 200 not in statuses
            first_429 = statuses.index(429)
            assert first_429 == burst
            # Before the block: the one 404, byte for byte, whatever the id looked like.
            assert all(answer == (404, the_404) for answer in answers[:first_429])
            # After it: only 429s, all alike.
            assert {answer for answer in answers[first_429:]} == {(429, answers[first_429][1])}
            the_429 = answers[first_429][1]

            # The sweeper learns nothing even when it hits a real room: the same 429, page and
            # websocket alike (the block is checked before the room is looked up).
            async with http.get(running.base_url + "/r/" + real, headers=sweeper) as response:
                assert response.status == 429
                assert response.headers["Retry-After"] == "60"
                assert await response.read() == the_429
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await http.ws_connect(ws_url(running, real), headers=sweeper)
            assert caught.value.status == 429

            # Everyone else still gets in.
            async with http.get(running.base_url + "/r/" + real, headers=colleague) as response:
                assert response.status == 200
            async with http.ws_connect(ws_url(running, real), headers=colleague) as ws:
                await ws.send_json({"type": "ping"})
                assert await ws.receive_json(timeout=5) == {"type": "pong"}

            # The block lifts when Retry-After says.
            clock.advance(60)
            async with http.get(running.base_url + "/r/" + real, headers=sweeper) as response:
                assert response.status == 200
        assert len(running.meetnow.rooms.rooms()) == 1


async def test_a_sweeper_behind_the_proxy_cannot_dodge_the_limit_with_its_own_forwarded_for() -> (
    None
):
    async with meetnow(trust_forwarded_for=True) as running, aiohttp.ClientSession() as http:
        statuses = []
        for i in range(100):
            # What an appending proxy (nginx's $proxy_add_x_forwarded_for, HAProxy's forwardfor,
            # ...) forwards: whatever the client sent, then the address the proxy saw.
            headers = {"X-Forwarded-For": f"10.0.{i}.1, 203.0.113.7"}
            async with http.get(
                running.base_url + "/r/" + new_room_id(), headers=headers
            ) as response:
                statuses.append(response.status)
        assert 429 in statuses, "a forged X-Forwarded-For made every lookup a new address"


async def test_room_creation_from_one_address_is_rate_limited() -> None:
    clock = FakeClock(0.0)
    async with meetnow(trust_forwarded_for=True) as running, aiohttp.ClientSession() as http:
        running.meetnow.limits = ServerLimits(clock=clock)
        spammer = {"X-Forwarded-For": "203.0.113.7"}
        created = 0
        while True:
            async with http.post(running.base_url + "/api/rooms", headers=spammer) as response:
                if response.status != 201:
                    assert response.status == 429
                    assert (await response.json())["error"] == "rate_limited"
                    break
                created += 1
            assert created <= 20
        assert created == 20  # the default burst, then one a minute
        async with http.post(
            running.base_url + "/api/rooms", headers={"X-Forwarded-For": "198.51.100.9"}
        ) as response:
            assert response.status == 201
        clock.advance(60)
        async with http.post(running.base_url + "/api/rooms", headers=spammer) as response:
            assert response.status == 201


async def test_a_foreign_page_cannot_create_rooms_through_its_visitors() -> None:
    async with meetnow() as running, aiohttp.ClientSession() as http:
        before = len(running.meetnow.rooms.rooms())
        async with http.post(
            running.base_url + "/api/rooms", headers={"Origin": "https://evil.example"}
        ) as response:
            assert response.status == 403
            assert (await response.json())["error"] == "forbidden_origin"
        assert len(running.meetnow.rooms.rooms()) == before
        async with http.post(
            running.base_url + "/api/rooms", headers={"Origin": running.base_url}
        ) as response:
            assert response.status == 201


def test_the_lobby_is_capped_at_the_room_size() -> None:
    from signaling.errors import RoomFull
    from signaling.rooms import RoomLimits

    rooms = RoomService(RoomLimits(max_participants=3))
    room = rooms.create_room(lobby=True)
    for index in range(3):
        rooms.join(room.id, f"knock {index}", f"session-{index:016d}")
    with pytest.raises(RoomFull, match="lobby"):
        rooms.join(room.id, "one too many", "session-x" + "x" * 10)
    assert len(room.waiting) == 3


# ------------------------------------------------------------------------- 2. link previews


PREVIEW_BOTS = [
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
]


async def test_link_preview_bots_join_nobody_and_use_nothing_up() -> None:
    async with meetnow() as running, aiohttp.ClientSession() as http:
        created = await create_room(running, topic="Preview Secret Topic")
        room = running.meetnow.rooms.get_room(created.id)
        assert room is not None
        expires_at = room.expires_at
        bodies = set()
        for i in range(20):
            headers = {"User-Agent": PREVIEW_BOTS[i % 2]}
            async with http.get(created.url, headers=headers) as response:
                assert response.status == 200
                assert response.headers["Cache-Control"] == "no-store"
                assert "noindex" in response.headers["X-Robots-Tag"]
                bodies.add(await response.read())
        # The page says nothing about the room: the same bytes for any room, no topic, no id.
        async with http.get(running.base_url + "/r/" + running.new_room()) as response:
            bodies.add(await response.read())
        assert len(bodies) == 1
        page = bodies.pop()
        assert b"Preview Secret Topic" not in page and created.id.encode() not in page
        # Nothing happened to the room: nobody joined, nothing was used up.
        assert running.meetnow.rooms.get_room(created.id) is room
        assert room.participants == {} and room.waiting == {}
        assert not room.ever_joined and room.first_joined_at is None
        assert room.sessions_seen == set()
        assert room.expires_at == expires_at
        assert running.meetnow.hub.count() == 0
        assert running.meetnow.relay.rooms == {}  # type: ignore[attr-defined]


# ------------------------------------------------------------ 3. cross-site websocket hijacking


async def test_a_websocket_from_a_foreign_origin_gets_403_and_same_origin_joins() -> None:
    async with meetnow() as running, crowd() as clients, aiohttp.ClientSession() as http:
        room_id = running.new_room()
        for origin in ("https://evil.example", "null", running.base_url + ".evil.example"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                await http.ws_connect(ws_url(running, room_id), origin=origin)
            assert caught.value.status == 403, origin
        room = running.meetnow.rooms.get_room(room_id)
        assert room is not None and not room.ever_joined
        friend = SignalingOnly(running.base_url, room_id, name="friend", origin=running.base_url)
        clients.append(friend)
        assert (await enter(friend))["type"] == "joined"
        assert set(room.participants) == {friend.participant_id}


# ---------------------------------------------------------------------- 4. oversized messages


async def test_a_1_mib_message_closes_that_connection_1009_and_the_call_goes_on() -> None:
    async with meetnow() as running, crowd() as clients:
        room_id = running.new_room()
        good = [media_client(running, room_id, name) for name in ("ana", "bo")]
        rogue = SignalingOnly(running.base_url, room_id, name="rogue")
        clients.extend([*good, rogue])
        for client in good:
            await client.join()
        assert (await enter(rogue))["type"] == "joined"
        await wait_until(lambda: receives_all(good[0], [good[1]], 10), 30, "ana receiving bo")
        await wait_until(lambda: receives_all(good[1], [good[0]], 10), 30, "bo receiving ana")
        mark = len(good[0].messages)
        await rogue.send_raw(json.dumps({"type": "ping", "pad": "x" * (1024 * 1024)}))
        assert await rogue.wait_closed() == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
        left = await reply(good[0], {"participant_left"}, since=mark)
        assert left["participant_id"] == rogue.participant_id
        before = {
            (c.name, kind): (stream.frames if stream else 0)
            for c, other in ((good[0], good[1]), (good[1], good[0]))
            for kind, stream in (
                ("audio", c.audio_from(other.participant_id or "")),
                ("video", c.video_from(other.participant_id or "")),
            )
        }
        await asyncio.sleep(1.5)
        for c, other in ((good[0], good[1]), (good[1], good[0])):
            assert other.participant_id is not None
            for kind, stream in (
                ("audio", c.audio_from(other.participant_id)),
                ("video", c.video_from(other.participant_id)),
            ):
                assert stream is not None
                assert stream.frames > before[(c.name, kind)] + 10, (c.name, kind)
        assert good[0].errors == [] and good[1].errors == []
        assert good[0].close_code is None and good[1].close_code is None


# --------------------------------------------------------------------------- 5. message floods


async def test_a_burst_of_500_pings_is_answered_rate_limited() -> None:
    async with meetnow() as running, crowd() as clients:
        room_id = running.new_room()
        flooder = SignalingOnly(running.base_url, room_id, name="flooder")
        other = SignalingOnly(running.base_url, room_id, name="other")
        clients.extend([flooder, other])
        assert (await enter(other))["type"] == "joined"
        assert (await enter(flooder))["type"] == "joined"
        mark = len(flooder.messages)
        for _ in range(500):
            await flooder.send_raw('{"type": "ping"}')
        error = await reply(flooder, {"error"}, since=mark)
        assert error["code"] == "rate_limited"
        assert error["fatal"] is False
        await asyncio.sleep(0.5)
        pongs = sum(1 for m in flooder.messages[mark:] if m["type"] == "pong")
        assert pongs < 200, pongs  # a burst of 60, then 20 a second
        # The rest of the room noticed nothing.
        assert other.errors == []
        mark = await command(other, {"type": "ping"})
        await reply(other, {"pong"}, since=mark)


async def test_a_sustained_flood_is_closed_1008_and_the_others_stay() -> None:
    async with meetnow() as running, crowd() as clients:
        room_id = running.new_room()
        flooder = SignalingOnly(running.base_url, room_id, name="flooder")
        others = [SignalingOnly(running.base_url, room_id, name=n) for n in ("x", "y")]
        clients.extend([flooder, *others])
        for client in others:
            assert (await enter(client))["type"] == "joined"
        assert (await enter(flooder))["type"] == "joined"
        marks = [len(c.messages) for c in others]
        assert flooder._ws is not None
        sent = 0
        deadline = time.monotonic() + 20
        while not flooder._ws.closed and time.monotonic() < deadline:
            try:
                await flooder._ws.send_str('{"type": "ping"}')
            except (ConnectionError, RuntimeError):
                break
            sent += 1
            if sent % 500 == 0:
                await asyncio.sleep(0)  # let the server read
        assert await flooder.wait_closed(10) == aiohttp.WSCloseCode.POLICY_VIOLATION
        assert any(e["code"] == "rate_limited" for e in flooder.errors)
        for client, mark in zip(others, marks, strict=True):
            left = await reply(client, {"participant_left"}, since=mark)
            assert left["participant_id"] == flooder.participant_id
            assert client.errors == [] and client.close_code is None
            ping = await command(client, {"type": "ping"})
            await reply(client, {"pong"}, since=ping)
        room = running.meetnow.rooms.get_room(room_id)
        assert room is not None
        assert set(room.participants) == {c.participant_id for c in others}


# ---------------------------------------------------------------------------- 6. locked rooms


async def test_a_locked_room_lets_nobody_new_in_and_only_hosts_lock() -> None:
    async with meetnow() as running, crowd() as clients:
        created = await create_room(running)
        room = running.meetnow.rooms.get_room(created.id)
        assert room is not None
        host = SignalingOnly(running.base_url, created.id, name="host")
        guest = SignalingOnly(running.base_url, created.id, name="guest")
        clients.extend([host, guest])
        joined = await enter(host, host_token=created.host_token)
        assert joined["type"] == "joined" and joined["host"] is True
        joined = await enter(guest)
        assert joined["type"] == "joined" and joined["host"] is False

        # A participant without host rights cannot lock (nor anything else a host does).
        await refused(guest, {"type": "lock", "locked": True}, "not_host")
        assert room.locked is False

        mark = await command(host, {"type": "lock", "locked": True})
        update = await reply(host, {"room_updated"}, since=mark)
        assert update["room"]["locked"] is True
        assert room.locked is True

        newcomer = SignalingOnly(running.base_url, created.id, name="newcomer")
        clients.append(newcomer)
        error = await enter(newcomer)
        assert error["type"] == "error" and error["code"] == "locked" and error["fatal"] is True
        assert await newcomer.wait_closed() == aiohttp.WSCloseCode.OK
        assert set(room.participants) == {host.participant_id, guest.participant_id}

        # Unlocked, the same person gets in.
        mark = len(guest.messages)
        await command(host, {"type": "lock", "locked": False})
        assert (await reply(guest, {"room_updated"}, since=mark))["room"]["locked"] is False
        again = SignalingOnly(
            running.base_url, created.id, name="newcomer", session=newcomer.session
        )
        clients.append(again)
        assert (await enter(again))["type"] == "joined"

        # Host rights can be handed on: then the guest may lock.
        assert guest.participant_id is not None
        mark = len(guest.messages)
        await command(host, {"type": "make_host", "participant_id": guest.participant_id})
        updated = await reply(guest, {"participant_updated"}, since=mark)
        assert updated["participant"]["host"] is True
        mark = await command(guest, {"type": "lock", "locked": True})
        assert (await reply(guest, {"room_updated", "error"}, since=mark))["type"] == "room_updated"
        assert room.locked is True


async def test_a_member_of_a_locked_room_who_reconnects_gets_back_in_without_a_ghost() -> None:
    async with meetnow() as running, crowd() as clients:
        created = await create_room(running)
        host = SignalingOnly(running.base_url, created.id, name="host")
        member = SignalingOnly(running.base_url, created.id, name="member")
        clients.extend([host, member])
        await enter(host, host_token=created.host_token)
        await enter(member)
        mark = await command(host, {"type": "lock", "locked": True})
        await reply(host, {"room_updated"}, since=mark)
        # The member's page reconnects (the web client keeps its session across reconnects):
        # someone already let in is not a newcomer.
        reconnect = SignalingOnly(
            running.base_url, created.id, name="member", session=member.session
        )
        clients.append(reconnect)
        assert (await enter(reconnect))["type"] == "joined"
        assert await member.wait_closed() == 4000  # the old socket is replaced
        room = running.meetnow.rooms.get_room(created.id)
        assert room is not None
        await wait_until(
            lambda: set(room.participants) == in_call_ids(running, created.id),
            5,
            "the room and the sockets to agree on who is in the call",
        )
        assert set(room.participants) == {host.participant_id, reconnect.participant_id}


# ------------------------------------------------------------------------- 7. participant cap


async def test_one_past_the_participant_cap_gets_room_full() -> None:
    async with meetnow(room_max_participants=2) as running, crowd() as clients:
        created = await create_room(running)
        inside = [SignalingOnly(running.base_url, created.id, name=f"in{i}") for i in range(2)]
        extra = SignalingOnly(running.base_url, created.id, name="extra")
        clients.extend([*inside, extra])
        for client in inside:
            assert (await enter(client))["type"] == "joined"
        error = await enter(extra)
        assert error["type"] == "error" and error["code"] == "room_full" and error["fatal"]
        assert await extra.wait_closed() == aiohttp.WSCloseCode.OK
        room = running.meetnow.rooms.get_room(created.id)
        assert room is not None and len(room.participants) == 2


async def test_admitting_from_the_lobby_respects_the_cap() -> None:
    async with meetnow(room_max_participants=2) as running, crowd() as clients:
        created = await create_room(running, lobby=True)
        host = SignalingOnly(running.base_url, created.id, name="host")
        knocker = SignalingOnly(running.base_url, created.id, name="knocker")
        second_device = SignalingOnly(running.base_url, created.id, name="host's phone")
        clients.extend([host, knocker, second_device])
        await enter(host, host_token=created.host_token)
        mark = len(host.messages)
        assert (await enter(knocker))["type"] == "waiting"
        knock = await reply(host, {"knock"}, since=mark)
        assert (await enter(second_device, host_token=created.host_token))["type"] == "joined"
        await refused(
            host, {"type": "admit", "participant_id": knock["participant"]["id"]}, "room_full"
        )
        room = running.meetnow.rooms.get_room(created.id)
        assert room is not None
        assert len(room.participants) == 2 and knock["participant"]["id"] in room.waiting
        assert not any(m["type"] == "joined" for m in knocker.messages)


# ----------------------------------------------------------------------------------- 8. removal


async def test_a_removed_participant_is_out_and_cannot_come_straight_back() -> None:
    async with meetnow() as running, crowd() as clients:
        created = await create_room(running)
        host = SignalingOnly(running.base_url, created.id, name="host")
        bomber = SignalingOnly(running.base_url, created.id, name="bomber")
        watcher = SignalingOnly(running.base_url, created.id, name="watcher")
        clients.extend([host, bomber, watcher])
        await enter(host, host_token=created.host_token)
        await enter(bomber)
        await enter(watcher)
        assert bomber.participant_id is not None and watcher.participant_id is not None
        # Only a host removes.
        await refused(
            watcher, {"type": "remove", "participant_id": bomber.participant_id}, "not_host"
        )
        mark = len(watcher.messages)
        await command(host, {"type": "remove", "participant_id": bomber.participant_id})
        error = await reply(bomber, {"error"}, since=0)
        assert error["code"] == "removed" and error["fatal"] is True
        assert await bomber.wait_closed() == aiohttp.WSCloseCode.OK
        left = await reply(watcher, {"participant_left"}, since=mark)
        assert left["participant_id"] == bomber.participant_id
        assert bomber.participant_id not in watcher.participants
        media = running.meetnow.relay.rooms[created.id]  # type: ignore[attr-defined]
        await wait_until(lambda: bomber.participant_id not in media.sessions, 5, "relay cleanup")

        # The same session (the same page, reconnecting) is turned away.
        back = SignalingOnly(running.base_url, created.id, name="bomber", session=bomber.session)
        clients.append(back)
        error = await enter(back)
        assert error["type"] == "error" and error["code"] == "removed" and error["fatal"]
        room = running.meetnow.rooms.get_room(created.id)
        assert room is not None
        assert set(room.participants) == {host.participant_id, watcher.participant_id}
        assert not any(m["type"] == "participant_joined" for m in watcher.messages[mark:])


async def test_a_removed_co_host_loses_host_rights_and_cannot_come_back() -> None:
    async with meetnow() as running, crowd() as clients:
        created = await create_room(running)
        host = SignalingOnly(running.base_url, created.id, name="host")
        deputy = SignalingOnly(running.base_url, created.id, name="deputy")
        clients.extend([host, deputy])
        await enter(host, host_token=created.host_token)
        await enter(deputy)
        assert deputy.participant_id is not None
        mark = len(deputy.messages)
        await command(host, {"type": "make_host", "participant_id": deputy.participant_id})
        assert (await reply(deputy, {"participant_updated"}, since=mark))["participant"]["host"]
        await command(host, {"type": "remove", "participant_id": deputy.participant_id})
        assert await deputy.wait_closed() == aiohttp.WSCloseCode.OK
        # Granted host rights went with the removal: the session is banned like any other.
        back = SignalingOnly(running.base_url, created.id, name="deputy", session=deputy.session)
        clients.append(back)
        error = await enter(back)
        assert error["type"] == "error" and error["code"] == "removed"


async def test_a_host_mute_stops_forwarding_that_audio_and_nothing_else() -> None:
    async with meetnow() as running, crowd() as clients:
        created = await create_room(running)
        host = media_client(running, created.id, "host")
        noisy = media_client(running, created.id, "noisy")
        clients.extend([host, noisy])
        assert (await enter(host, host_token=created.host_token))["host"] is True
        await noisy.join()
        assert noisy.participant_id is not None
        noisy_id = noisy.participant_id
        await wait_until(lambda: receives_all(host, [noisy], 10), 30, "host receiving noisy")
        await refused(noisy, {"type": "mute", "participant_id": noisy_id}, "not_host")

        mark = len(host.messages)
        await command(host, {"type": "mute", "participant_id": noisy_id, "muted": True})
        update = await reply(host, {"participant_updated"}, since=mark)
        assert update["participant"]["muted_by_host"] is True
        await asyncio.sleep(0.5)  # what was already in flight
        audio, video = host.audio_from(noisy_id), host.video_from(noisy_id)
        assert audio is not None and video is not None
        audio_before, video_before = audio.frames, video.frames
        await asyncio.sleep(1.0)
        assert audio.frames <= audio_before + 5, "muted audio is still forwarded"
        assert video.frames > video_before + 10, "the mute stopped the video too"

        await command(host, {"type": "mute", "participant_id": noisy_id, "muted": False})
        await wait_until(lambda: audio.frames > audio_before + 10, 10, "audio after unmute")


# --------------------------------------------------------------------- 9. expiry and the end


async def test_a_room_never_joined_for_24_hours_answers_410_for_good() -> None:
    clock = FakeClock()
    async with meetnow(clock) as running, aiohttp.ClientSession() as http:
        room_id = running.new_room()
        async with http.get(running.base_url + "/r/" + room_id) as response:
            assert response.status == 200
        clock.advance(DAY + 1)
        for path in ("/r/", "/ws/"):
            async with http.get(running.base_url + path + room_id) as response:
                assert response.status == 410, path
                assert b"This meeting has ended" in await response.read()
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await http.ws_connect(ws_url(running, room_id))
        assert caught.value.status == 410
        assert running.meetnow.rooms.get_room(room_id) is None
        assert running.meetnow.rooms.is_gone(room_id)


async def test_a_used_room_answers_410_after_its_empty_grace() -> None:
    clock = FakeClock()
    async with (
        meetnow(clock, room_empty_grace_seconds=30) as running,
        crowd() as clients,
        aiohttp.ClientSession() as http,
    ):
        room_id = running.new_room()
        visitor = SignalingOnly(running.base_url, room_id, name="visitor")
        clients.append(visitor)
        assert (await enter(visitor))["type"] == "joined"
        await visitor.close()
        room = running.meetnow.rooms.get_room(room_id)
        assert room is not None
        await wait_until(lambda: room.participants == {}, 5, "the leave")
        clock.advance(29)  # a reload within the grace still finds the room
        async with http.get(running.base_url + "/r/" + room_id) as response:
            assert response.status == 200
        clock.advance(2)
        async with http.get(running.base_url + "/r/" + room_id) as response:
            assert response.status == 410
        with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
            await http.ws_connect(ws_url(running, room_id))
        assert caught.value.status == 410


async def test_a_for_2h_link_admits_nobody_new_after_2_hours() -> None:
    clock = FakeClock()
    async with meetnow(clock) as running, crowd() as clients:
        room = running.meetnow.rooms.create_room(lifetime_seconds=2 * 3600)
        early = SignalingOnly(running.base_url, room.id, name="early")
        late = SignalingOnly(running.base_url, room.id, name="late")
        clients.extend([early, late])
        assert (await enter(early))["type"] == "joined"
        clock.advance(2 * 3600)
        error = await enter(late)
        assert error["type"] == "error" and error["code"] == "room_ended" and error["fatal"]
        assert early.close_code is None  # those in the call stay


async def test_a_host_ends_the_meeting_for_everyone_and_the_link_never_comes_back() -> None:
    # An id source that repeats itself: the ended room's id must never be handed out again.
    ids = iter([new_room_id()] * 3 + [new_room_id()])
    rooms = RoomService(room_limits(test_settings()), make_room_id=lambda: next(ids))
    async with (
        meetnow(rooms=rooms) as running,
        crowd() as clients,
        aiohttp.ClientSession() as http,
    ):
        created = await create_room(running)
        host = SignalingOnly(running.base_url, created.id, name="host")
        guest = SignalingOnly(running.base_url, created.id, name="guest")
        clients.extend([host, guest])
        await enter(host, host_token=created.host_token)
        await enter(guest)
        await refused(guest, {"type": "end_meeting"}, "not_host")
        await command(host, {"type": "end_meeting"})
        for client in (host, guest):
            closed = await reply(client, {"room_closed"}, since=0)
            assert closed["reason"] == "ended"
            assert await client.wait_closed() == aiohttp.WSCloseCode.OK
        for path in ("/r/", "/ws/"):
            async with http.get(running.base_url + path + created.id) as response:
                assert response.status == 410, path
        assert rooms.get_room(created.id) is None and rooms.is_gone(created.id)
        # The id source offers the same id twice more: the next room gets another one.
        async with http.post(running.base_url + "/api/rooms") as response:
            assert response.status == 201
            assert (await response.json())["id"] != created.id
        assert rooms.is_gone(created.id)


# ------------------------------------------------------------------------------------ 10. lobby


async def test_the_lobby_keeps_guests_out_until_a_host_admits_them() -> None:
    async with meetnow() as running, crowd() as clients:
        created = await create_room(running, lobby=True)
        room = running.meetnow.rooms.get_room(created.id)
        assert room is not None and room.lobby
        host = SignalingOnly(running.base_url, created.id, name="Hostess")
        guest = SignalingOnly(running.base_url, created.id, name="Guest One")
        second = SignalingOnly(running.base_url, created.id, name="Guest Two")
        clients.extend([host, guest, second])

        joined = await enter(host, host_token=created.host_token)
        assert joined["type"] == "joined" and joined["host"] is True
        assert joined["room"]["lobby"] is True

        mark = len(host.messages)
        waiting = await enter(guest)
        assert waiting["type"] == "waiting"
        assert set(waiting) == {"type", "room"}  # no ice servers, no participants
        knock = await reply(host, {"knock"}, since=mark)
        assert knock["participant"]["name"] == "Guest One"
        guest_id = knock["participant"]["id"]
        assert guest_id in room.waiting and guest_id not in room.participants
        # Waiting means no peer connection either: nothing reaches the guest but "waiting".
        await asyncio.sleep(0.3)
        assert [m["type"] for m in guest.messages] == ["waiting"]
        assert running.meetnow.relay.rooms[created.id].sessions.keys() == {  # type: ignore[attr-defined]
            host.participant_id
        }
        # A waiting guest can do nothing but wait.
        await refused(guest, {"type": "admit", "participant_id": guest_id}, "out_of_order")

        mark = len(host.messages)
        await command(host, {"type": "admit", "participant_id": guest_id})
        joined = await reply(guest, {"joined"}, since=0)
        assert joined["host"] is False and joined["participant_id"] == guest_id
        await reply(guest, {"offer"}, since=0)
        resolved = await reply(host, {"knock_resolved"}, since=mark)
        assert resolved == {"type": "knock_resolved", "participant_id": guest_id, "admitted": True}

        # A second guest knocks; an admitted non-host cannot let them in.
        mark = len(host.messages)
        guest_mark = len(guest.messages)
        assert (await enter(second))["type"] == "waiting"
        knock = await reply(host, {"knock"}, since=mark)
        assert knock["participant"]["name"] == "Guest Two"
        second_id = knock["participant"]["id"]
        await refused(guest, {"type": "admit", "participant_id": second_id}, "not_host")
        assert second_id in room.waiting
        assert not any(m["type"] == "knock" for m in guest.messages[guest_mark:])

        # Denied: told so, and the same session cannot knock again.
        mark = len(host.messages)
        await command(host, {"type": "deny", "participant_id": second_id})
        error = await reply(second, {"error"}, since=0)
        assert error["code"] == "denied" and error["fatal"] is True
        assert await second.wait_closed() == aiohttp.WSCloseCode.OK
        resolved = await reply(host, {"knock_resolved"}, since=mark)
        assert resolved["admitted"] is False
        mark = len(host.messages)
        again = SignalingOnly(
            running.base_url, created.id, name="Guest Two", session=second.session
        )
        clients.append(again)
        error = await enter(again)
        assert error["type"] == "error" and error["code"] == "removed" and error["fatal"]
        await asyncio.sleep(0.3)
        assert not any(m["type"] == "knock" for m in host.messages[mark:])
        assert room.waiting == {}
        assert set(room.participants) == {host.participant_id, guest_id}


async def test_a_denied_knocker_leaves_nothing_behind() -> None:
    async with meetnow() as running, crowd() as clients:
        created = await create_room(running, lobby=True)
        host = SignalingOnly(running.base_url, created.id, name="host")
        knocker = SignalingOnly(running.base_url, created.id, name="knocker")
        clients.extend([host, knocker])
        await enter(host, host_token=created.host_token)
        mark = len(host.messages)
        await enter(knocker)
        knock = await reply(host, {"knock"}, since=mark)
        await command(host, {"type": "deny", "participant_id": knock["participant"]["id"]})
        assert await knocker.wait_closed() == aiohttp.WSCloseCode.OK
        await command(host, {"type": "end_meeting"})
        await host.wait_closed()
        await asyncio.sleep(0.3)
        # The room is closed: nothing about it may be left (the knocker's connection holds the
        # Room, with its names and topic, for as long as it stays in the hub).
        assert running.meetnow.hub.connections(created.id) == []
        assert running.meetnow.hub.count() == 0


# ------------------------------------------------------------------------------- 11. host token


async def test_the_host_token_is_separate_exact_and_never_kept_in_the_clear() -> None:
    async with meetnow() as running, crowd() as clients:
        created = await create_room(running)
        token = created.host_token
        assert token not in created.url and token not in created.id
        assert len(token) >= 32  # 192 random bits

        # One character off: an ordinary participant, who cannot act as a host.
        forged = token[:-1] + ("A" if token[-1] != "A" else "B")
        impostor = SignalingOnly(running.base_url, created.id, name="impostor")
        clients.append(impostor)
        joined = await enter(impostor, host_token=forged)
        assert joined["type"] == "joined" and joined["host"] is False
        await refused(impostor, {"type": "lock", "locked": True}, "not_host")

        # Another room's host token is no good here either.
        other = await create_room(running)
        stranger = SignalingOnly(running.base_url, created.id, name="stranger")
        clients.append(stranger)
        assert (await enter(stranger, host_token=other.host_token))["host"] is False

        host = SignalingOnly(running.base_url, created.id, name="host")
        clients.append(host)
        assert (await enter(host, host_token=token))["host"] is True
        # The join answers do not echo it.
        for client in (impostor, stranger, host):
            assert token not in json.dumps(client.messages)

        # Only a SHA-256 of the token is in memory.
        room = running.meetnow.rooms.get_room(created.id)
        assert room is not None
        assert room.host_keys == [hashlib.sha256(token.encode()).digest()]
        for key in room.host_keys:
            assert len(key) == 32 and key != token.encode()
        assert token not in repr(room)


# ------------------------------------------------------------------------- 12. TURN credentials


async def test_turn_credentials_are_short_lived_hmacs_minted_only_for_admitted_people() -> None:
    secret = "s3cret"
    ttl = 3600
    async with (
        meetnow(turn_urls=["turn:127.0.0.1:3478"], turn_secret=secret) as running,
        crowd() as clients,
    ):
        created = await create_room(running, lobby=True)
        host = SignalingOnly(running.base_url, created.id, name="host")
        guest = SignalingOnly(running.base_url, created.id, name="guest")
        clients.extend([host, guest])

        def check_turn(joined: dict[str, Any]) -> None:
            turn = [s for s in joined["ice_servers"] if s["urls"] == ["turn:127.0.0.1:3478"]]
            assert len(turn) == 1, joined["ice_servers"]
            username, credential = turn[0]["username"], turn[0]["credential"]
            expiry, _, user = username.partition(":")
            assert user == joined["participant_id"]
            assert abs(int(expiry) - (time.time() + ttl)) < 30
            expected = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
            assert credential == base64.b64encode(expected).decode()

        joined = await enter(host, host_token=created.host_token)
        check_turn(joined)
        mark = len(host.messages)
        waiting = await enter(guest)
        assert waiting["type"] == "waiting" and "ice_servers" not in waiting
        assert "turn:" not in json.dumps(guest.messages)  # nothing about TURN while waiting
        knock = await reply(host, {"knock"}, since=mark)
        await command(host, {"type": "admit", "participant_id": knock["participant"]["id"]})
        joined = await reply(guest, {"joined"}, since=0)
        check_turn(joined)
        for client in (host, guest):
            assert secret not in json.dumps(client.messages)


# ---------------------------------------------------------------------------------- 13. logs


async def test_the_logs_of_a_whole_call_hold_no_name_topic_room_id_link_or_token(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    for name in ("signaling", "bot", "aiohttp", "aiohttp.access"):
        caplog.set_level(logging.DEBUG, logger=name)
    topic = "Zebra Quarterly Merger"
    names = {
        "host": "Hortensia Privatename",
        "guest": "Gwendolyn Secretname",
        "raw": "Rawleigh Hiddenname",
        "bomber": "Bartholomew Zoombomber",
        "denied": "Desdemona Turnedaway",
    }
    async with meetnow() as running, crowd() as clients, aiohttp.ClientSession() as http:
        created = await create_room(running, lobby=True, topic=topic)
        async with http.get(created.url) as response:
            assert response.status == 200
        host = media_client(running, created.id, names["host"])
        guest = media_client(running, created.id, names["guest"])
        raw = SignalingOnly(running.base_url, created.id, name=names["raw"])
        bomber = SignalingOnly(running.base_url, created.id, name=names["bomber"])
        denied = SignalingOnly(running.base_url, created.id, name=names["denied"])
        clients.extend([host, guest, raw, bomber, denied])
        assert (await enter(host, host_token=created.host_token))["host"] is True

        async def admit(client: ParticipantClient) -> str:
            mark = len(host.messages)
            assert (await enter(client))["type"] == "waiting"
            knock = await reply(host, {"knock"}, since=mark)
            await command(host, {"type": "admit", "participant_id": knock["participant"]["id"]})
            await reply(client, {"joined"}, since=0)
            assert client.participant_id is not None
            return client.participant_id

        guest_id = await admit(guest)
        await wait_until(lambda: receives_all(host, [guest], 10), 30, "host receiving guest")
        await wait_until(lambda: receives_all(guest, [host], 10), 30, "guest receiving host")
        mark = len(host.messages)
        await command(guest, {"type": "media_state", "audio": True, "video": True})
        await reply(host, {"participant_updated"}, since=mark)

        mark = len(host.messages)
        await command(host, {"type": "mute", "participant_id": guest_id, "muted": True})
        await reply(host, {"participant_updated"}, since=mark)
        await command(host, {"type": "mute", "participant_id": guest_id, "muted": False})

        # A participant whose SDP answer is garbage (with a name in it): refused, logged safely.
        await admit(raw)
        offer = await reply(raw, {"offer"}, since=0)
        garbage = f"v=0\r\no={names['raw']} {created.id} {created.host_token}\r\n"
        await raw.send({"type": "answer", "revision": offer["revision"], "sdp": garbage})
        error = await reply(raw, {"error"}, since=0)
        assert error["code"] == "negotiation_failed"

        bomber_id = await admit(bomber)
        await command(host, {"type": "remove", "participant_id": bomber_id})
        await bomber.wait_closed()

        mark = len(host.messages)
        assert (await enter(denied))["type"] == "waiting"
        knock = await reply(host, {"knock"}, since=mark)
        await command(host, {"type": "deny", "participant_id": knock["participant"]["id"]})
        await denied.wait_closed()

        await command(host, {"type": "end_meeting"})
        for client in (host, guest):
            await client.wait_closed()
        async with http.get(created.url) as response:
            assert response.status == 410
        await asyncio.sleep(0.3)

    assert any(r.name.startswith("signaling") for r in caplog.records), "nothing was captured"
    captured = capfd.readouterr()
    text = "\n".join(
        [
            caplog.text,
            *(caplog.handler.format(r) for r in caplog.records),
            captured.out,
            captured.err,
        ]
    )
    for private in [
        *names.values(),
        *(part for name in names.values() for part in name.split()),
        topic,
        "Zebra",
        created.id,
        created.url,
        created.host_url,
        created.host_token,
        "/r/",
        "/ws/",
    ]:
        assert private not in text, private


# ------------------------------------------------------------------------ 14. honest encryption


CLAIM = re.compile(r"end[- ]to[- ]end|e2ee", re.IGNORECASE)
NEGATIONS = {"not", "no", "never", "without", "nor", "neither", "cannot"}
SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+|\n\s*\n")
CLAUSE_BREAK = re.compile(r"[,;:]")
NEGATION_WINDOW = 4
"""A negation counts when it is among the few words before the mention, in the same clause."""


def encryption_claims(text: str) -> list[str]:
    """The sentences of ``text`` that mention end-to-end encryption without negating it."""
    text = re.sub(r"<[^>]*>", " ", text)  # HTML tags are not words
    claims = []
    for sentence in SENTENCE_BREAK.split(text):
        for match in CLAIM.finditer(sentence):
            clause = CLAUSE_BREAK.split(sentence[: match.start()])[-1]
            words = re.findall(r"[a-z0-9'-]+", clause.lower())[-NEGATION_WINDOW:]
            if not any(w in NEGATIONS or w.endswith("n't") for w in words):
                claims.append(" ".join(sentence.split()))
                break
    return claims


HONEST = [
    "The relay decrypts and forwards it, so whoever runs the server could see it: meetnow is not\n"
    "  end-to-end encrypted, and says so.",
    "meetnow is **not** end-to-end encrypted (E2EE): the relay sees the media.",
    "Calls aren't end-to-end encrypted yet.",
    "<p>This call is <strong>not</strong> end-to-end encrypted.</p>",
    "Encrypted in transit, never end to end.",
]
CLAIMS = [
    "Calls are end-to-end encrypted.",
    "Calls are end-to-end encrypted, not just in transit.",
    "Not only fast: every meeting is E2EE.",
    "Not everyone knows that calls are end-to-end encrypted.",
    "<p>Your call is <em>end-to-end</em> encrypted</p>",
    "No account, no download, and every call is end to end encrypted!",
]


@pytest.mark.parametrize("sentence", HONEST)
def test_the_claim_checker_lets_honest_sentences_through(sentence: str) -> None:
    assert encryption_claims(sentence) == []


@pytest.mark.parametrize("sentence", CLAIMS)
def test_the_claim_checker_catches_end_to_end_claims(sentence: str) -> None:
    assert encryption_claims(sentence) != []
    assert encryption_claims("Honest intro. " + sentence + " Honest outro.") != []


def test_neither_the_readme_nor_the_web_client_claims_end_to_end_encryption() -> None:
    files = [
        ROOT / "README.md",
        *sorted(p for p in (ROOT / "web_client").rglob("*") if p.is_file()),
    ]
    checked = set()
    found = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # images
        checked.add(path.suffix)
        claims = encryption_claims(text)
        if claims:
            found[str(path.relative_to(ROOT))] = claims
    assert {".md", ".html", ".js"} <= checked
    assert found == {}, "meetnow is not end-to-end encrypted (the relay sees the media)"
    # The README does say what is encrypted, and that it is not end to end.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert CLAIM.search(readme) and "DTLS-SRTP" in readme


# ----------------------------------------------------------------------- 15. resource hygiene


async def test_100_join_leave_cycles_leave_no_peer_connection_task_or_memory_behind() -> None:
    async with meetnow(relay_workers=0) as running:
        server = running.meetnow
        relay = server.relay
        room_id = running.new_room()

        async def cycle(i: int) -> None:
            client = ParticipantClient(
                running.base_url, room_id, name=f"cycler {i}", audio=ToneAudioTrack()
            )
            try:
                await client.join()
                await wait_until(
                    lambda: client.pc is not None and client.pc.connectionState == "connected",
                    10,
                    "the peer connection",
                )
            finally:
                await client.close()
            await wait_until(
                lambda: server.hub.count() == 0 and relay.rooms == {},  # type: ignore[attr-defined]
                10,
                "the leave",
            )

        def alive_peer_connections() -> int:
            gc.collect()
            return sum(isinstance(o, RTCPeerConnection) for o in gc.get_objects())

        for i in range(3):  # warm-up: imports, codec tables, first-use caches
            await cycle(i)
        await asyncio.sleep(0.5)
        gc.collect()
        tasks_before = len(asyncio.all_tasks())
        tracemalloc.start()
        try:
            memory_before = tracemalloc.get_traced_memory()[0]
            started = time.monotonic()
            for i in range(100):
                await cycle(i)
            elapsed = time.monotonic() - started
            await asyncio.sleep(0.5)
            gc.collect()
            growth = tracemalloc.get_traced_memory()[0] - memory_before
        finally:
            tracemalloc.stop()
        print(f"100 join/leave cycles with a connected peer connection: {elapsed:.1f} s")

        room = server.rooms.get_room(room_id)
        assert room is not None and room.participants == {} and room.waiting == {}
        assert server.hub.count() == 0
        assert relay.rooms == {}  # type: ignore[attr-defined]
        assert relay.peer_connection_count() == 0  # type: ignore[attr-defined]
        assert alive_peer_connections() == 0
        # No connection object of this server survives its socket.
        assert not any(
            isinstance(o, ClientConnection) and o._server is server for o in gc.get_objects()
        )
        await wait_until(lambda: len(asyncio.all_tasks()) <= tasks_before + 2, 5, "tasks to end")
        assert growth < 20 * 1024 * 1024, f"traced memory grew by {growth / 2**20:.1f} MiB"
