"""Old links and strangers at the door (docs/security.md): expiry, the host ending the meeting,
and the lobby.

Every test runs the real server on loopback with real websocket clients; nothing of ours is mocked.
Clocks are injected, never patched. Negative checks ("nobody got X") wait on a round trip, never on
a sleep.
"""

from __future__ import annotations

import gc

import aiohttp
import pytest

from signaling.connection import ClientConnection
from signaling.rooms import Room, RoomService, new_room_id
from signaling.server import room_limits

from ..conftest import FakeClock, RunningServer, test_settings
from ..signaling.test_relay import wait_until
from ..support.security import (
    SignalingOnly,
    command,
    create_room,
    crowd,
    enter,
    meetnow,
    refused,
    reply,
    round_trip,
    ws_url,
)

DAY = 24 * 3600


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
            await http.ws_connect(ws_url(running.base_url, room_id))
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
            await http.ws_connect(ws_url(running.base_url, room_id))
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
        created = await create_room(running.base_url)
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
        created = await create_room(running.base_url, lobby=True)
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
        await round_trip(guest)
        assert [m["type"] for m in guest.messages] == ["waiting", "pong"]
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
        await round_trip(host)
        assert not any(m["type"] == "knock" for m in host.messages[mark:])
        assert room.waiting == {}
        assert set(room.participants) == {host.participant_id, guest_id}


def remnants(running: RunningServer, room_id: str) -> list[str]:
    """What is alive in memory of one room: its Room and this server's connections."""
    gc.collect()
    found = []
    for thing in gc.get_objects():
        if isinstance(thing, Room) and thing.id == room_id:
            found.append("Room")
        elif isinstance(thing, ClientConnection) and thing._server is running.meetnow:
            found.append("ClientConnection")
    return found


async def test_a_denied_knocker_leaves_nothing_behind() -> None:
    async with meetnow() as running, crowd() as clients:
        hub = running.meetnow.hub
        created = await create_room(running.base_url, lobby=True, topic="Knocking Topic")
        host = SignalingOnly(running.base_url, created.id, name="host")
        knocker = SignalingOnly(running.base_url, created.id, name="knocker")
        clients.extend([host, knocker])
        await enter(host, host_token=created.host_token)
        mark = len(host.messages)
        await enter(knocker)
        knock = await reply(host, {"knock"}, since=mark)
        assert hub.count() == 2
        await command(host, {"type": "deny", "participant_id": knock["participant"]["id"]})
        assert await knocker.wait_closed() == aiohttp.WSCloseCode.OK
        # Its connection leaves the hub (where it held the Room, with names and topic).
        await wait_until(lambda: hub.count() == 1, 5, "the denied knocker to leave the hub")
        room = running.meetnow.rooms.get_room(created.id)
        assert room is not None
        assert room.waiting == {} and set(room.participants) == {host.participant_id}
        del room
        # The scan below sees a live room and connection (the host's).
        assert sorted(remnants(running, created.id)) == ["ClientConnection", "Room"]

        await command(host, {"type": "end_meeting"})
        await host.wait_closed()
        await wait_until(lambda: hub.count() == 0, 5, "the host's connection to leave the hub")
        assert running.meetnow.rooms.get_room(created.id) is None
        # The room is closed: nothing about it is left in memory, no Room and no connection.
        assert remnants(running, created.id) == []
