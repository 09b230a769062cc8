"""Rooms and their edges after the outside attack pass (issue 10, items 7 and 8), through the public
interfaces: real websocket clients and real aiortc peers against a real server on loopback, and
headless Chromium for what the page says.

- Invisible names (fillers, blank Braille, the grapheme joiner, marks alone, variation selectors)
  become "Guest"; Zalgo keeps at most two marks per character.
- An answer without ``a=fingerprint`` gets ``negotiation_failed``: no traceback, no peer
  connection left behind.
- Sockets that have not joined hear ``room_closed`` when their room ends, and are closed.
- Past a ``--for`` deadline the page still loads (people already in may reconnect) and says,
  when a newcomer joins, that the link no longer lets new people in.
- Locking the room empties the lobby: knockers already waiting are told ``locked``.
"""

from __future__ import annotations

import asyncio
import time
import unicodedata
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from playwright.async_api import Browser, expect

from signaling.client import ParticipantClient, ToneAudioTrack
from signaling.relay import Relay
from signaling.rooms import LINK_EXPIRED

from ..conftest import FakeClock, RunningServer
from ..security.test_hardening_http import every_log_line
from ..support.browser import browser, join, open_room
from ..support.security import (
    SignalingOnly,
    command,
    create_room,
    crowd,
    enter,
    meetnow,
    refused,
    reply,
)

__all__ = ["browser"]  # the fixture, imported for pytest

ZALGO = "".join(ch + "\u0301\u0300\u0302\u0303\u0304\u0306\u0307\u0308" * 3 for ch in "Zalgo")
INVISIBLE_NAMES = {
    "hangul filler": "\u3164\u3164\u3164",
    "braille blank": "\u2800\u2800",
    "grapheme joiner": "\u034f\u034f",
    "combining marks alone": "\u0301\u0302\u0303\u0304",
    "50 variation selectors": "\ufe0f" * 50,
    "fillers between spaces": " \u3164 \u2800 \u115f\u1160 \uffa0 ",
}


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened within {timeout} s: {what}")
        await asyncio.sleep(0.02)


# ------------------------------------------------------------------------ 7. invisible names


@pytest.mark.parametrize("what", list(INVISIBLE_NAMES))
async def test_an_invisible_name_shows_as_guest_to_everyone(what: str) -> None:
    async with meetnow() as running, crowd() as clients:
        room_id = running.new_room()
        ada = SignalingOnly(running.base_url, room_id, name="Ada")
        ghost = SignalingOnly(running.base_url, room_id, name=INVISIBLE_NAMES[what])
        clients.extend([ada, ghost])
        await enter(ada)
        mark = len(ada.messages)
        assert (await enter(ghost))["type"] == "joined"
        joined = await reply(ada, {"participant_joined"}, since=mark)
        assert joined["participant"]["name"] == "Guest"


def marks_per_character(name: str) -> list[int]:
    """How many combining marks follow each base character of ``name``."""
    runs: list[int] = []
    for ch in name:
        if unicodedata.category(ch) in ("Mn", "Mc", "Me"):
            runs[-1] += 1
        else:
            runs.append(0)
    return runs


async def test_zalgo_keeps_its_letters_and_at_most_two_marks_each() -> None:
    assert max(marks_per_character(ZALGO)) == 24  # what was typed
    async with meetnow() as running, crowd() as clients:
        room_id = running.new_room()
        ada = SignalingOnly(running.base_url, room_id, name="Ada")
        zalgo = SignalingOnly(running.base_url, room_id, name=ZALGO)
        clients.extend([ada, zalgo])
        await enter(ada)
        mark = len(ada.messages)
        await enter(zalgo)
        shown = (await reply(ada, {"participant_joined"}, since=mark))["participant"]["name"]
    base = "".join(
        ch for ch in unicodedata.normalize("NFD", shown) if unicodedata.combining(ch) == 0
    )
    assert base == "Zalgo"
    assert max(marks_per_character(shown)) <= 2


async def test_a_topic_of_fillers_is_no_topic() -> None:
    async with meetnow() as running:
        created = await create_room(running.base_url, topic="\u3164\u2800\u034f")
        room = running.meetnow.rooms.get_room(created.id)
        assert room is not None and room.topic is None


# ------------------------------------------------------- 8a. an answer without a fingerprint


def without_fingerprints(sdp: str) -> str:
    return "".join(
        line for line in sdp.splitlines(keepends=True) if not line.startswith("a=fingerprint:")
    )


class NoFingerprintClient(ParticipantClient):
    """A real aiortc participant whose answers lose their ``a=fingerprint`` lines on the way."""

    async def send(self, message: dict[str, Any]) -> None:
        if message.get("type") == "answer":
            message = {**message, "sdp": without_fingerprints(message["sdp"])}
        await super().send(message)


async def test_an_answer_without_a_fingerprint_is_refused_cleanly() -> None:
    with every_log_line() as lines:
        async with meetnow() as running, crowd() as clients:
            room_id = running.new_room()
            relay = running.meetnow.relay
            assert isinstance(relay, Relay)  # in this process (relay_workers=0): countable
            # The same client, its answer untouched: accepted (no error by the pong).
            honest = ParticipantClient(running.base_url, room_id, name="A", audio=ToneAudioTrack())
            clients.append(honest)
            await honest.join()
            await wait_for(lambda: honest.offers_answered == 1, "the honest answer")
            mark = await command(honest, {"type": "ping"})
            await reply(honest, {"pong"}, since=mark)
            assert honest.errors == [] and relay.peer_connection_count() == 1

            stripped = NoFingerprintClient(
                running.base_url, room_id, name="B", audio=ToneAudioTrack()
            )
            clients.append(stripped)
            await stripped.join()
            error = await reply(stripped, {"error"}, since=0)
            assert error["code"] == "negotiation_failed" and error["fatal"] is True
            assert await stripped.wait_closed() == aiohttp.WSCloseCode.OK
            # Its peer connection is gone; the honest one is still there.
            await wait_for(lambda: relay.peer_connection_count() == 1, "the dead peer closed")
            mark = await command(honest, {"type": "ping"})
            await reply(honest, {"pong"}, since=mark)
            assert honest.errors == []
    assert [line for line in lines if "Traceback" in line or "AssertionError" in line] == []


async def test_the_traceback_check_sees_aiortcs_assertion() -> None:
    """Test of the test: the same stripped answer handed straight to the relay (the path answers
    took before the check) makes aiortc fail its assertion in the DTLS task, and the capture
    sees the traceback."""
    with every_log_line() as lines:
        async with meetnow() as running, crowd() as clients:
            room_id = running.new_room()
            quiet = SignalingOnly(running.base_url, room_id, name="Q", audio=ToneAudioTrack())
            clients.append(quiet)
            await enter(quiet)
            offer = await reply(quiet, {"offer"}, since=0)
            peer = RTCPeerConnection()
            try:
                await peer.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
                await peer.setLocalDescription(await peer.createAnswer())
                assert quiet.participant_id is not None
                await running.meetnow.relay.apply_answer(
                    room_id,
                    quiet.participant_id,
                    offer["revision"],
                    without_fingerprints(peer.localDescription.sdp),
                )
                await wait_for(
                    lambda: any("AssertionError" in line for line in lines),
                    "aiortc's assertion in the log",
                )
            finally:
                await peer.close()


# ------------------------------------------------------ 8b. sockets that never joined


async def test_sockets_that_have_not_joined_hear_the_room_end_and_are_closed() -> None:
    async with meetnow() as running, crowd() as clients:
        created = await create_room(running.base_url)
        host = SignalingOnly(running.base_url, created.id, name="host")
        lurker = SignalingOnly(running.base_url, created.id, name="lurker")
        clients.extend([host, lurker])
        await lurker.connect()  # the page is open, its user has not pressed Join
        await enter(host, host_token=created.host_token)
        await command(host, {"type": "end_meeting"})
        closed = await reply(lurker, {"room_closed"}, since=0)
        assert closed["reason"] == "ended"
        assert await lurker.wait_closed() == aiohttp.WSCloseCode.OK


async def test_a_socket_that_has_not_joined_hears_its_room_expire() -> None:
    clock = FakeClock()
    async with meetnow(clock, room_unused_ttl_seconds=60) as running, crowd() as clients:
        room = running.meetnow.rooms.create_room()
        lurker = SignalingOnly(running.base_url, room.id, name="lurker")
        clients.append(lurker)
        await lurker.connect()
        mark = await command(lurker, {"type": "ping"})
        await reply(lurker, {"pong"}, since=mark)  # the server is reading this socket
        clock.advance(61)  # nobody joined within its unused lifetime
        running.meetnow.rooms.sweep()  # what the server's sweeper does every few seconds
        closed = await reply(lurker, {"room_closed"}, since=0)
        assert closed["reason"] == "expired"
        assert await lurker.wait_closed() == aiohttp.WSCloseCode.OK


# --------------------------------------------------------------- 8c. --for deadlines


async def test_past_the_for_deadline_newcomers_are_told_and_members_may_reconnect(
    clocked_server: RunningServer,
) -> None:
    running, clock = clocked_server, clocked_server.clock
    assert clock is not None
    room = running.meetnow.rooms.create_room(lifetime_seconds=2 * 3600)
    async with crowd() as clients, aiohttp.ClientSession() as http:
        early = SignalingOnly(running.base_url, room.id, name="early")
        clients.append(early)
        assert (await enter(early))["type"] == "joined"
        clock.advance(2 * 3600)
        async with http.get(f"{running.base_url}/r/{room.id}") as page:
            assert page.status == 200  # the page loads: people in the call may reload it
        late = SignalingOnly(running.base_url, room.id, name="late")
        clients.append(late)
        error = await enter(late)
        assert error["code"] == "room_ended" and error["fatal"] is True
        assert error["message"] == LINK_EXPIRED
        assert "no longer lets new people in" in LINK_EXPIRED
        # Someone already in whose network blips gets back in.
        again = SignalingOnly(running.base_url, room.id, name="early", session=early.session)
        clients.append(again)
        assert (await enter(again))["type"] == "joined"


@pytest.mark.browser
async def test_past_the_for_deadline_the_page_says_the_link_no_longer_lets_people_in(
    browser: Browser, clocked_server: RunningServer
) -> None:
    assert clocked_server.clock is not None
    room = clocked_server.meetnow.rooms.create_room(lifetime_seconds=3600)
    async with crowd() as clients:
        # The meeting is under way (an unused room would just expire, and its page answer 410).
        early = SignalingOnly(clocked_server.base_url, room.id, name="early")
        clients.append(early)
        await enter(early)
        clocked_server.clock.advance(3600)
        page = await open_room(browser, f"{clocked_server.base_url}/r/{room.id}")
        try:
            await join(page, "Late")
            await expect(page.locator("#ended-text")).to_have_text(LINK_EXPIRED, timeout=15_000)
            await expect(page.locator("#ended-title")).to_have_text("You can't join this meeting")
            await expect(page.locator("#ended")).to_be_visible()
        finally:
            await page.context.close()
        assert set(room.participants) == {early.participant_id}


# ----------------------------------------------- 8d. a knocker waiting when the host locks


async def test_locking_turns_away_the_knockers_already_waiting() -> None:
    async with meetnow() as running, crowd() as clients:
        created = await create_room(running.base_url, lobby=True)
        room = running.meetnow.rooms.get_room(created.id)
        assert room is not None
        host = SignalingOnly(running.base_url, created.id, name="host")
        knocker = SignalingOnly(running.base_url, created.id, name="knocker")
        clients.extend([host, knocker])
        await enter(host, host_token=created.host_token)
        mark = len(host.messages)
        assert (await enter(knocker))["type"] == "waiting"
        knock = await reply(host, {"knock"}, since=mark)
        knocker_id = knock["participant"]["id"]

        mark = await command(host, {"type": "lock", "locked": True})
        resolved = await reply(host, {"knock_resolved"}, since=mark)
        assert resolved == {
            "type": "knock_resolved",
            "participant_id": knocker_id,
            "admitted": False,
        }
        error = await reply(knocker, {"error"}, since=0)
        assert error["code"] == "locked" and error["fatal"] is True
        assert await knocker.wait_closed() == aiohttp.WSCloseCode.OK
        assert room.waiting == {} and knocker.session not in room.banned_sessions
        # Nobody is left to admit; a new knock meets the lock.
        await refused(host, {"type": "admit", "participant_id": knocker_id}, "out_of_order")
        assert set(room.participants) == {host.participant_id}
        again = SignalingOnly(running.base_url, created.id, name="knocker", session=knocker.session)
        clients.append(again)
        assert (await enter(again))["code"] == "locked"

        # Unlocked, the same person may knock again (they were not barred).
        mark = await command(host, {"type": "lock", "locked": False})
        await reply(host, {"room_updated"}, since=mark)
        later = SignalingOnly(running.base_url, created.id, name="knocker", session=knocker.session)
        clients.append(later)
        assert (await enter(later))["type"] == "waiting"
