"""Threats at the door (docs/security.md): war-dialled ids, sweeping from behind the proxy, rooms
created in bulk or by a foreign page, link previews, cross-site websockets and oversized messages.

Every test runs the real server on loopback with real websocket clients; nothing of ours is mocked.
Where a clock matters it is injected (the room service's or the rate limiter's), never patched.
"""

from __future__ import annotations

import json
import secrets

import aiohttp
import pytest

from signaling.errors import RoomFull
from signaling.limits import ServerLimits
from signaling.rooms import RoomLimits, RoomService, new_room_id

from ..conftest import FakeClock
from ..signaling.test_relay import receives_all, wait_until
from ..support.security import (
    SignalingOnly,
    create_room,
    crowd,
    enter,
    media_client,
    meetnow,
    reply,
    ws_url,
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
                await http.ws_connect(ws_url(running.base_url, real), headers=sweeper)
            assert caught.value.status == 429

            # Everyone else still gets in.
            async with http.get(running.base_url + "/r/" + real, headers=colleague) as response:
                assert response.status == 200
            async with http.ws_connect(ws_url(running.base_url, real), headers=colleague) as ws:
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
        created = await create_room(running.base_url, topic="Preview Secret Topic")
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
                await http.ws_connect(ws_url(running.base_url, room_id), origin=origin)
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
        good = [media_client(running.base_url, room_id, name) for name in ("ana", "bo")]
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
        streams = [
            stream
            for c, other in ((good[0], good[1]), (good[1], good[0]))
            for stream in (
                c.audio_from(other.participant_id or ""),
                c.video_from(other.participant_id or ""),
            )
            if stream is not None
        ]
        assert len(streams) == 4
        before = [stream.frames for stream in streams]
        await wait_until(
            lambda: all(s.frames > b + 10 for s, b in zip(streams, before, strict=True)),
            10,
            "every stream of the call to go on after the rogue's close",
        )
        assert good[0].errors == [] and good[1].errors == []
        assert good[0].close_code is None and good[1].close_code is None
