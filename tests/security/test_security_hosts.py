"""Zoombombing once a meeting is under way, and who may act as a host (docs/security.md): lock,
participant cap, removal, host mute, the host token and TURN credentials.

Every test runs the real server on loopback with real websocket clients (and real aiortc peers where
media matters); nothing of ours is mocked. Negative checks ("nobody got X") wait on a round trip,
never on a sleep.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import aiohttp

from signaling.client import ReceivedStream

from ..signaling.test_relay import receives_all, wait_until
from ..support.security import (
    SignalingOnly,
    command,
    create_room,
    crowd,
    enter,
    in_call_ids,
    media_client,
    meetnow,
    refused,
    reply,
    round_trip,
)

# ---------------------------------------------------------------------------- 6. locked rooms


async def test_a_locked_room_lets_nobody_new_in_and_only_hosts_lock() -> None:
    async with meetnow() as running, crowd() as clients:
        created = await create_room(running.base_url)
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
        created = await create_room(running.base_url)
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
        created = await create_room(running.base_url)
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
        created = await create_room(running.base_url, lobby=True)
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
        await round_trip(knocker)
        assert not any(m["type"] == "joined" for m in knocker.messages)


# ----------------------------------------------------------------------------------- 8. removal


async def test_a_removed_participant_is_out_and_cannot_come_straight_back() -> None:
    async with meetnow() as running, crowd() as clients:
        created = await create_room(running.base_url)
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
        await round_trip(watcher)
        assert not any(m["type"] == "participant_joined" for m in watcher.messages[mark:])


async def test_a_removed_co_host_loses_host_rights_and_cannot_come_back() -> None:
    async with meetnow() as running, crowd() as clients:
        created = await create_room(running.base_url)
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


VIDEO_FRAMES_PER_WINDOW = 10
"""A window of the mute test: as long as 10 frames of the same publisher's video take to arrive."""


async def audio_packets_in_a_video_window(audio: ReceivedStream, video: ReceivedStream) -> int:
    """Audio packets that arrive while the same publisher's video advances by a window.

    Both come from one publisher, through one relay and one socket to the subscriber, counted as
    they come off the wire: what the relay forwarded before a moment arrives before the video it
    forwarded after it. So a window of video is a barrier for the audio, not a guess of time."""
    audio_before, video_target = audio.packets, video.frames + VIDEO_FRAMES_PER_WINDOW
    await wait_until(lambda: video.frames >= video_target, 10, "a window of video")
    return audio.packets - audio_before


async def test_a_host_mute_stops_forwarding_that_audio_and_nothing_else() -> None:
    async with meetnow() as running, crowd() as clients:
        created = await create_room(running.base_url)
        # The host counts packets as they arrive: no jitter buffer or decoder delays the count.
        host = media_client(running.base_url, created.id, "host", decode=False)
        noisy = media_client(running.base_url, created.id, "noisy")
        clients.extend([host, noisy])
        assert (await enter(host, host_token=created.host_token))["host"] is True
        await noisy.join()
        assert noisy.participant_id is not None
        noisy_id = noisy.participant_id
        await wait_until(lambda: receives_all(host, [noisy], 10), 30, "host receiving noisy")
        await refused(noisy, {"type": "mute", "participant_id": noisy_id}, "not_host")
        audio, video = host.audio_from(noisy_id), host.video_from(noisy_id)
        assert audio is not None and video is not None
        # The check sees audio while it flows (a third of a second of it: about 16 packets).
        assert await audio_packets_in_a_video_window(audio, video) >= 5

        mark = len(host.messages)
        await command(host, {"type": "mute", "participant_id": noisy_id, "muted": True})
        update = await reply(host, {"participant_updated"}, since=mark)
        assert update["participant"]["muted_by_host"] is True
        # The relay stopped the audio before it said so; what it forwarded before may still be
        # on its way. Within a few windows of video (a backlog on a busy machine), a window comes
        # with no audio at all...
        windows = [await audio_packets_in_a_video_window(audio, video)]
        while windows[-1] != 0 and len(windows) < 10:
            windows.append(await audio_packets_in_a_video_window(audio, video))
        assert windows[-1] == 0, f"muted audio is still forwarded: {windows} packets per window"
        # ...and the next second of video (the mute did not stop it) brings none either.
        for _ in range(3):
            assert await audio_packets_in_a_video_window(audio, video) == 0

        await command(host, {"type": "mute", "participant_id": noisy_id, "muted": False})
        audio_before = audio.packets
        await wait_until(lambda: audio.packets > audio_before + 10, 10, "audio after unmute")


# ------------------------------------------------------------------------------- 11. host token


async def test_the_host_token_is_separate_exact_and_never_kept_in_the_clear() -> None:
    async with meetnow() as running, crowd() as clients:
        created = await create_room(running.base_url)
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
        other = await create_room(running.base_url)
        stranger = SignalingOnly(running.base_url, created.id, name="stranger")
        clients.append(stranger)
        assert (await enter(stranger, host_token=other.host_token))["host"] is False

        host = SignalingOnly(running.base_url, created.id, name="host")
        clients.append(host)
        assert (await enter(host, host_token=token))["host"] is True
        # The join answers do not echo it, nor anything else sent to anyone.
        for client in (impostor, stranger, host):
            await round_trip(client)
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
        created = await create_room(running.base_url, lobby=True)
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
        await round_trip(guest)
        assert "turn:" not in json.dumps(guest.messages)  # nothing about TURN while waiting
        knock = await reply(host, {"knock"}, since=mark)
        await command(host, {"type": "admit", "participant_id": knock["participant"]["id"]})
        joined = await reply(guest, {"joined"}, since=0)
        check_turn(joined)
        for client in (host, guest):
            await round_trip(client)
            assert secret not in json.dumps(client.messages)
