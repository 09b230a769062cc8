"""The websocket protocol against a real server: every bad input gets its own error, and nobody
else in the room notices."""

from __future__ import annotations

import json

import aiohttp
import pytest

from signaling.client import ParticipantClient, PatternVideoTrack, ToneAudioTrack

from ..conftest import RunningServer, start_server, test_settings
from ..signaling.test_relay import receives_all, wait_until
from ..support.security import round_trip


async def bare_client(server: RunningServer, room_id: str, name: str = "x") -> ParticipantClient:
    client = ParticipantClient(server.base_url, room_id, name=name)
    await client.connect()
    return client


async def expect_error(client: ParticipantClient, text: str, code: str) -> dict[str, object]:
    mark = len(client.messages)
    await client.send_raw(text)
    error = await client.next_message("error", since=mark)
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    return error


BAD_MESSAGES = [
    ("{not json", "malformed"),
    ("[1, 2, 3]", "malformed"),
    ('"join"', "malformed"),
    ("{}", "unknown_type"),
    ('{"type": "subscribe"}', "unknown_type"),
    ('{"type": 7}', "unknown_type"),
    ('{"type": "join", "version": 1}', "invalid_message"),
    ('{"type": "join", "name": "a", "session": "short"}', "invalid_message"),
    ('{"type": "ping", "extra": true}', "invalid_message"),
    ('{"type": "answer", "revision": 0, "sdp": "v=0"}', "invalid_message"),
    ('{"type": "answer", "revision": 1, "sdp": "v=0"}', "out_of_order"),
    ('{"type": "media_state", "audio": true, "video": false}', "out_of_order"),
]


@pytest.mark.parametrize(("text", "code"), BAD_MESSAGES)
async def test_each_bad_message_gets_its_specific_error_and_the_connection_stays(
    server: RunningServer, text: str, code: str
) -> None:
    client = await bare_client(server, server.new_room())
    try:
        await expect_error(client, text, code)
        # Still usable afterwards: the connection was not dropped.
        mark = len(client.messages)
        await client.send({"type": "ping"})
        await client.next_message("pong", since=mark)
    finally:
        await client.close()


async def test_binary_frames_are_refused(server: RunningServer) -> None:
    client = await bare_client(server, server.new_room())
    try:
        assert client._ws is not None
        mark = len(client.messages)
        await client._ws.send_bytes(b"\x00\x01")
        error = await client.next_message("error", since=mark)
        assert error["code"] == "malformed"
    finally:
        await client.close()


async def test_oversized_message_closes_only_that_connection_with_1009() -> None:
    running, runner = await start_server(test_settings(ws_max_message_bytes=64 * 1024))
    try:
        room_id = running.new_room()
        client = await bare_client(running, room_id)
        await client.send_raw(json.dumps({"type": "ping", "pad": "x" * 100_000}))
        assert await client.wait_closed() == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
        await client.close()
    finally:
        await runner.cleanup()


async def test_a_socket_that_never_joins_is_closed() -> None:
    running, runner = await start_server(test_settings(ws_join_timeout_seconds=0.5))
    try:
        client = await bare_client(running, running.new_room())
        assert await client.wait_closed() == aiohttp.WSCloseCode.OK
        await client.close()
        # One that joins in time stays. Its deadline comes before that of a socket opened after
        # it that never joins: once that one is closed, this one's timer has had its turn too.
        joined = ParticipantClient(running.base_url, running.new_room(), name="in time")
        await joined.join()
        idle = await bare_client(running, running.new_room())
        assert await idle.wait_closed() == aiohttp.WSCloseCode.OK
        await idle.close()
        await round_trip(joined)  # still served, after its deadline
        assert joined.close_code is None
        await joined.close()
    finally:
        await runner.cleanup()


async def test_version_mismatch_is_fatal(server: RunningServer) -> None:
    client = await bare_client(server, server.new_room())
    try:
        error = await expect_error(
            client,
            json.dumps({"type": "join", "version": 2, "name": "a", "session": "s" * 20}),
            "unsupported_version",
        )
        assert error["fatal"] is True
        assert await client.wait_closed() == aiohttp.WSCloseCode.OK
    finally:
        await client.close()


async def test_second_join_is_out_of_order(server: RunningServer) -> None:
    room_id = server.new_room()
    client = ParticipantClient(server.base_url, room_id, name="once")
    try:
        await client.join()
        await expect_error(
            client,
            json.dumps({"type": "join", "name": "again", "session": client.session}),
            "out_of_order",
        )
    finally:
        await client.close()


async def test_full_room_refuses_the_next_participant() -> None:
    running, runner = await start_server(test_settings(room_max_participants=2))
    try:
        room_id = running.new_room()
        inside = [ParticipantClient(running.base_url, room_id, name=f"in{i}") for i in range(2)]
        for client in inside:
            await client.join()
        extra = await bare_client(running, room_id, "extra")
        error = await expect_error(
            extra, json.dumps({"type": "join", "name": "extra", "session": "e" * 20}), "room_full"
        )
        assert error["fatal"] is True
        assert await extra.wait_closed() == aiohttp.WSCloseCode.OK
        assert len(running.meetnow.rooms.get_room(room_id).participants) == 2  # type: ignore[union-attr]
        for client in [*inside, extra]:
            await client.close()
    finally:
        await runner.cleanup()


async def test_unknown_room_websocket_is_the_plain_404(server: RunningServer) -> None:
    client = ParticipantClient(server.base_url, "A" * 22)
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await client.connect()
    assert caught.value.status == 404
    await client.close()


async def test_room_that_expired_after_the_socket_opened_refuses_join(
    clocked_server: RunningServer,
) -> None:
    assert clocked_server.clock is not None
    room_id = clocked_server.new_room()
    client = await bare_client(clocked_server, room_id)
    try:
        clocked_server.clock.advance(25 * 3600)
        error = await expect_error(
            client,
            json.dumps({"type": "join", "name": "late", "session": "l" * 20}),
            "room_ended",
        )
        assert error["fatal"] is True
    finally:
        await client.close()


async def test_same_session_rejoin_replaces_the_old_connection(server: RunningServer) -> None:
    room_id = server.new_room()
    watcher = ParticipantClient(server.base_url, room_id, name="watcher")
    first = ParticipantClient(server.base_url, room_id, name="phone")
    await watcher.join()
    await first.join()
    again = ParticipantClient(server.base_url, room_id, name="phone", session=first.session)
    try:
        mark = len(watcher.messages)
        await again.join()
        assert await first.wait_closed() == 4000
        left = await watcher.next_message("participant_left", since=mark)
        assert left["participant_id"] == first.participant_id
        await wait_until(lambda: set(watcher.participants) == {again.participant_id}, 5, "one tile")
        room = server.meetnow.rooms.get_room(room_id)
        assert room is not None and len(room.participants) == 2
    finally:
        for client in (watcher, first, again):
            await client.close()


async def test_media_state_reaches_the_others(server: RunningServer) -> None:
    room_id = server.new_room()
    a, b = (ParticipantClient(server.base_url, room_id, name=n) for n in "ab")
    try:
        await a.join()
        await b.join()
        mark = len(a.messages)
        await b.send({"type": "media_state", "audio": False, "video": True})
        update = await a.next_message("participant_updated", since=mark)
        assert update["participant"]["id"] == b.participant_id
        assert update["participant"]["media"] == {"audio": False, "video": True, "screen": False}
    finally:
        await a.close()
        await b.close()


async def test_a_misbehaving_participant_does_not_disturb_the_others_media(
    server: RunningServer,
) -> None:
    room_id = server.new_room()
    good = [
        ParticipantClient(
            server.base_url, room_id, name=n, audio=ToneAudioTrack(), video=PatternVideoTrack()
        )
        for n in ("a", "b")
    ]
    rogue = ParticipantClient(server.base_url, room_id, name="rogue")
    try:
        for client in good:
            await client.join()
        await rogue.join()
        await wait_until(lambda: receives_all(good[0], [good[1]], 10), 20, "media before")
        assert good[1].participant_id is not None
        stream = good[0].video_from(good[1].participant_id)
        assert stream is not None
        before = stream.frames
        for text, code in BAD_MESSAGES[:-2]:
            await expect_error(rogue, text, code)
        await expect_error(
            rogue, '{"type": "answer", "revision": 99, "sdp": "v=0"}', "out_of_order"
        )
        await wait_until(lambda: stream.frames > before + 10, 10, "video after the bad messages")
        for client in good:
            await round_trip(client)
        assert good[0].errors == [] and good[1].errors == []
        # Everyone still sees the rogue as a participant: errors did not evict it either.
        assert rogue.participant_id in good[0].participants
        # An oversized message closes the rogue's connection (1009) and nobody else's.
        mark = len(good[0].messages)
        await rogue.send_raw(json.dumps({"type": "ping", "pad": "x" * 300_000}))
        assert await rogue.wait_closed() == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
        await good[0].next_message("participant_left", since=mark)
        before = stream.frames
        await wait_until(lambda: stream.frames > before + 10, 10, "video after the rogue's close")
        for client in good:
            await round_trip(client)
        assert good[0].errors == [] and good[1].errors == []
    finally:
        for client in [*good, rogue]:
            await client.close()
