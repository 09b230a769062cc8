"""Chat in the call (issue 15, docs/protocol.md "Chat and hands"), over real websockets against
the real server: who gets a message, exactly what they get, what is refused, and what a flood
does (and does not) do.

Negative checks ("nobody got it") wait on a barrier: a later message from the same sender, which
the server handles after the refused one, on the same path, so once every receiver has the later
one, the refused one would have arrived before it. A lobby guest cannot send that barrier: there,
each receiver's ping and pong is the barrier. The rate-limit counts run on a server whose clock
moves only when the test moves it (tests/support/stepped_clock.py), so they are exact.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp

from signaling.chat import CHAT_BURST, chat_bucket
from signaling.client import ParticipantClient
from signaling.limits import Bucket

from ..conftest import FakeClock
from ..security.test_security_logs import leaks
from ..signaling.test_relay import receives_all, wait_until
from ..support.security import (
    SignalingOnly,
    command,
    create_room,
    crowd,
    enter,
    media_client,
    meetnow,
    refused,
    reply,
    round_trip,
)
from ..support.serve_process import meetnow_serve
from ..support.stepped_clock import RawSocket, SteppedServer, stepped_server

CHAT_FIELDS = {"type", "id", "participant_id", "name", "text", "sent_at"}


def chats(client: ParticipantClient, since: int = 0) -> list[dict[str, Any]]:
    return [m for m in client.messages[since:] if m["type"] == "chat"]


async def say(client: ParticipantClient, text: str) -> int:
    """Send a chat message; returns the mark to look for what follows after."""
    return await command(client, {"type": "chat", "text": text})


async def heard(
    client: ParticipantClient, text: str, *, since: int = 0, timeout: float = 10.0
) -> dict[str, Any]:
    """The chat message with this text that ``client`` received after ``since``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in chats(client, since):
            if message["text"] == text:
                return message
        await asyncio.sleep(0.02)
    raise AssertionError(f"{client.name!r} did not get the chat message within {timeout} s")


async def who_heard(
    text: str,
    sender: ParticipantClient,
    receivers: Iterable[ParticipantClient],
    marks: dict[str, int],
) -> list[str]:
    """The names of the ``receivers`` that got ``text`` since their mark, once the barrier (a later
    message from ``sender``) has reached them all: an empty list means nobody got it."""
    barrier = "barrier " + secrets.token_hex(4)
    await say(sender, barrier)
    found = []
    for client in receivers:
        await heard(client, barrier, since=marks[client.name])
        if any(m["text"] == text for m in chats(client, marks[client.name])):
            found.append(client.name)
    return found


async def people_in(base_url: str, room_id: str, *names: str) -> list[SignalingOnly]:
    """Participants in the call, signaling only (no media)."""
    people = [SignalingOnly(base_url, room_id, name=name) for name in names]
    for person in people:
        assert (await enter(person))["type"] == "joined"
    return people


# ------------------------------------------------------------------------------ delivery


async def test_a_message_reaches_everyone_in_the_call_with_its_sender_and_server_time() -> None:
    clock = FakeClock()
    async with meetnow(clock) as running, crowd() as clients:
        room_id = running.new_room()
        ann, bob, cy = people = await people_in(running.base_url, room_id, "Ann", "Bob", "Cy")
        clients.extend(people)
        text = "Hello, can everyone hear me?"
        await say(bob, text)
        received = [await heard(person, text) for person in people]  # Bob's own is the echo
        first = received[0]
        assert set(first) == CHAT_FIELDS
        assert all(message == first for message in received), "everyone gets the same message"
        assert first["participant_id"] == bob.participant_id
        assert first["name"] == "Bob"
        assert first["sent_at"] == int(clock() * 1000)  # the room service's (injected) wall clock
        assert isinstance(first["id"], str) and first["id"]

        # Each message has an id of its own; times follow the clock.
        clock.advance(61.5)
        await say(ann, "second")
        second = await heard(cy, "second")
        assert second["id"] != first["id"]
        assert second["sent_at"] == first["sent_at"] + 61_500
        assert second["participant_id"] == ann.participant_id
        for person in people:
            assert person.errors == []


async def test_text_that_looks_like_html_arrives_exactly_as_sent() -> None:
    async with meetnow() as running, crowd() as clients:
        room_id = running.new_room()
        people = await people_in(running.base_url, room_id, "<b>Ann</b>", "Bob")
        clients.extend(people)
        text = (
            "  <img src=x onerror=\"alert(1)\"> &amp; &lt;b&gt; <script>alert('x')</script>\n"
            "\tZoë 🎉 e\u0301 \u202eevil\u202c\r\n  "
        )
        await say(people[0], text)
        for person in people:
            message = await heard(person, text)
            assert message["text"].encode("utf-8") == text.encode("utf-8")
            assert message["name"] == "<b>Ann</b>"


async def test_2000_characters_pass_2001_are_refused_and_nobody_receives_them() -> None:
    async with meetnow() as running, crowd() as clients:
        room_id = running.new_room()
        ann, bob = people = await people_in(running.base_url, room_id, "Ann", "Bob")
        clients.extend(people)
        # Counted in code points: each emoji is one (two UTF-16 units, four UTF-8 bytes).
        longest = "🎉" * 2000
        await say(ann, longest)
        assert (await heard(bob, longest))["text"] == longest

        marks = {p.name: len(p.messages) for p in people}
        too_long = "🎉" * 1999 + "ab"
        error = await refused_with(ann, too_long, "message_too_long")
        assert error["message"] == "Messages can be at most 2,000 characters."
        assert await who_heard(too_long, ann, people, marks) == []
        # The same check finds a message that did go out (it can fail).
        marks = {p.name: len(p.messages) for p in people}
        await say(ann, longest)
        assert await who_heard(longest, ann, people, marks) == ["Ann", "Bob"]


async def refused_with(client: ParticipantClient, text: str, code: str) -> dict[str, Any]:
    mark = await say(client, text)
    error = await reply(client, {"error", "chat"}, since=mark)
    assert error["type"] == "error", "the message went out"
    assert (error["code"], error["fatal"]) == (code, False), error
    return error


async def test_empty_or_blank_messages_are_refused_and_the_connection_stays() -> None:
    async with meetnow() as running, crowd() as clients:
        room_id = running.new_room()
        ann, bob = people = await people_in(running.base_url, room_id, "Ann", "Bob")
        clients.extend(people)
        marks = {p.name: len(p.messages) for p in people}
        for blank in ("", " ", "\n\t \u3000\u2003"):
            error = await refused_with(ann, blank, "invalid_message")
            assert error["message"] == "A message needs some text."
        # Not text, or text no UTF-8 can carry: refused, named, never relayed.
        for bad in ('{"type": "chat", "text": 42}', '{"type": "chat", "text": "a\\ud800b"}'):
            mark = len(ann.messages)
            await ann.send_raw(bad)
            error = await reply(ann, {"error"}, since=mark)
            assert (error["code"], error["fatal"]) == ("invalid_message", False)
            assert "text" in error["message"]
        assert await who_heard("", ann, people, marks) == []
        assert all(len(chats(p, marks[p.name])) == 1 for p in people)  # the barrier alone
        assert ann.close_code is None and bob.errors == []


# -------------------------------------------------------------------- who may read and send


async def test_a_lobby_guest_can_neither_send_nor_read_and_gets_no_history_once_admitted() -> None:
    async with meetnow() as running, crowd() as clients:
        created = await create_room(running.base_url)
        host = SignalingOnly(running.base_url, created.id, name="Host")
        member = SignalingOnly(running.base_url, created.id, name="Member")
        guest = SignalingOnly(running.base_url, created.id, name="Guest")
        clients.extend([host, member, guest])
        assert (await enter(host, host_token=created.host_token))["host"] is True
        assert (await enter(member))["type"] == "joined"
        mark = await command(host, {"type": "set_lobby", "enabled": True})
        await reply(host, {"room_updated"}, since=mark)
        mark = len(host.messages)
        assert (await enter(guest))["type"] == "waiting"
        knock = await reply(host, {"knock"}, since=mark)

        # The guest cannot send: refused as every in-call message is, and nobody got it.
        secret_attempt = "guest speaking " + secrets.token_hex(4)
        marks = {p.name: len(p.messages) for p in (host, member)}
        await refused(guest, {"type": "chat", "text": secret_attempt}, "out_of_order")
        for person in (host, member):
            await round_trip(person)
            assert chats(person, marks[person.name]) == []

        # The guest cannot read: said while waiting, then admitted. The host's admit is handled
        # after its chat message, so ``joined`` is the barrier: anything relayed to the guest
        # would have come before it.
        said_before = "said before the guest came in"
        await say(host, said_before)
        await heard(member, said_before)
        await command(host, {"type": "admit", "participant_id": knock["participant"]["id"]})
        await reply(guest, {"joined"}, since=0)
        assert chats(guest) == []
        # Once in, the guest reads what is said from then on, and nothing from before.
        await say(member, "welcome")
        assert (await heard(guest, "welcome"))["name"] == "Member"
        assert [m["text"] for m in chats(guest)] == ["welcome"]


async def test_a_late_joiner_sees_only_what_is_said_after_joining() -> None:
    async with meetnow() as running, crowd() as clients:
        room_id = running.new_room()
        ann, bob = people = await people_in(running.base_url, room_id, "Ann", "Bob")
        clients.extend(people)
        for text in ("one", "two", "three"):
            await say(ann, text)
            await heard(bob, text)
        late = SignalingOnly(running.base_url, room_id, name="Late")
        clients.append(late)
        joined = await enter(late)
        assert "chat" not in str(joined.keys())
        await say(bob, "four")
        await heard(late, "four")
        assert [m["text"] for m in chats(late)] == ["four"]


# --------------------------------------------------------------------------- rate limits


async def new_room(server: SteppedServer) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(server.base_url + "/api/rooms") as response,
    ):
        assert response.status == 201
        room_id: str = (await response.json())["id"]
        return room_id


async def send_chats(socket: RawSocket, count: int, prefix: str) -> None:
    for index in range(count):
        await socket.send({"type": "chat", "text": f"{prefix} {index}"})


def error_codes(socket: RawSocket) -> list[tuple[str, bool]]:
    return [(m["code"], m["fatal"]) for m in socket.received if m["type"] == "error"]


def test_the_chat_limit_is_a_burst_of_10_then_the_setting_per_minute() -> None:
    from signaling.settings import Settings

    assert CHAT_BURST == 10
    assert Settings.model_fields["limit_chat_per_minute"].default == 60
    assert chat_bucket(60) == Bucket(burst=10, per_second=1.0)


async def test_a_chat_flood_is_refused_past_its_limit_and_never_closes_the_connection() -> None:
    async with stepped_server() as server:
        room_id = await new_room(server)
        talker = await RawSocket.open(server.base_url, room_id)
        listener = await RawSocket.open(server.base_url, room_id)
        try:
            await talker.join("talker")
            await listener.join("listener")
            server.advance(3.0)  # the connections' own buckets full again after joining
            # The burst, and 5 more at the same instant.
            await send_chats(talker, CHAT_BURST + 5, "burst")
            await talker.barrier()
            assert talker.count("chat") == CHAT_BURST
            assert error_codes(talker) == [("chat_rate_limited", False)] * 5
            # 10 s at 19 a second: within the connection's own limit (20 a second), 18 a second
            # past the chat's (1 a second). 180 refusals within 10 s: had they counted toward
            # the flood close (100 within 10 s), the socket would be closed with 1008.
            for _ in range(10):
                server.advance(1.0)
                await send_chats(talker, 19, "steady")
                await talker.barrier()
            assert talker.close_code is None
            assert talker.count("chat") == CHAT_BURST + 10
            assert error_codes(talker) == [("chat_rate_limited", False)] * (5 + 10 * 18)
            refusal = next(m for m in talker.received if m["type"] == "error")
            assert refusal["message"] == "You are sending messages too fast; wait a moment."
            # The others got exactly what was accepted, in order, and nothing else went wrong.
            await listener.barrier()
            texts = [m["text"] for m in listener.received if m["type"] == "chat"]
            echoed = [m["text"] for m in talker.received if m["type"] == "chat"]
            assert texts == echoed
            assert texts[:CHAT_BURST] == [f"burst {i}" for i in range(CHAT_BURST)]
            assert texts[CHAT_BURST:] == ["steady 0"] * 10
            assert listener.count("error") == 0 and listener.close_code is None

            # The same check sees a close: past the connection's own limit it is 1008.
            server.advance(3.0)
            await talker.send_pings(60 + 100)
            await talker.barrier()
            assert talker.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION
        finally:
            await talker.close()
            await listener.close()


async def test_a_chat_flood_does_not_disturb_the_media_of_the_call() -> None:
    async with meetnow() as running, crowd() as clients:
        room_id = running.new_room()
        first = media_client(running.base_url, room_id, "first")
        second = media_client(running.base_url, room_id, "second")
        flooder = SignalingOnly(running.base_url, room_id, name="flooder")
        clients.extend([first, second, flooder])
        await first.join()
        await second.join()
        await wait_until(lambda: receives_all(first, [second], 10), 30, "first's media")
        await wait_until(lambda: receives_all(second, [first], 10), 30, "second's media")
        assert (await enter(flooder))["type"] == "joined"
        before = {c.name: frames_from(c, other) for c, other in ((first, second), (second, first))}

        # 50 messages at once: within the connection's limit (60), far past the chat's (10).
        mark = len(flooder.messages)
        for index in range(50):
            await flooder.send({"type": "chat", "text": f"flood {index}"})
        await round_trip(flooder)
        accepted = [m["text"] for m in chats(flooder, mark)]
        refusals = [e for e in flooder.messages[mark:] if e["type"] == "error"]
        assert CHAT_BURST <= len(accepted) < 50
        assert {(e["code"], e["fatal"]) for e in refusals} == {("chat_rate_limited", False)}
        assert len(accepted) + len(refusals) == 50
        assert flooder.close_code is None

        # Both media participants got the accepted messages, and their video and audio go on.
        for client in (first, second):
            await heard(client, accepted[-1])
            assert [m["text"] for m in chats(client) if m["text"].startswith("flood")] == accepted
        for client, other in ((first, second), (second, first)):
            video, audio = before[client.name]
            await wait_until(
                lambda c=client, o=other, v=video, a=audio: (
                    frames_from(c, o)[0] >= v + 30 and frames_from(c, o)[1] >= a + 30
                ),
                20,
                f"{client.name} receiving after the flood",
            )
            assert client.errors == [] and client.close_code is None


def frames_from(client: ParticipantClient, other: ParticipantClient) -> tuple[int, int]:
    """(video, audio) frames ``client`` has decoded from ``other`` so far."""
    assert other.participant_id is not None
    video = client.video_from(other.participant_id)
    audio = client.audio_from(other.participant_id)
    return (video.frames if video else 0, audio.frames if audio else 0)


# ---------------------------------------------------------------------------------- logs


async def test_meetnow_serve_with_debug_logging_never_prints_chat_text(tmp_path: Path) -> None:
    marker = "Quokka" + secrets.token_hex(6)
    texts = {
        "accepted": f"{marker} accepted <b>bold</b>",
        "too long": f"{marker} too long " + "x" * 2000,
        "flood": f"{marker} flood",
    }
    with meetnow_serve(tmp_path, "--verbose") as served:
        async with crowd() as clients:
            room_id = (await create_room(served.base_url)).id
            ann, bob = await people_in(served.base_url, room_id, "Ann", "Bob")
            clients.extend([ann, bob])
            await say(ann, texts["accepted"])
            await heard(bob, texts["accepted"])
            await refused_with(ann, texts["too long"], "message_too_long")
            for _ in range(CHAT_BURST + 2):
                await say(ann, texts["flood"])
            await round_trip(ann)
            assert any(e["code"] == "chat_rate_limited" for e in ann.errors)
            await bob.send_raw(json.dumps({"type": "chat", "text": f"{marker} \ud800"}))
            assert (await reply(bob, {"error"}, since=0))["code"] == "invalid_message"
        output = served.stop()
    assert served.process.returncode == 0, output
    assert "DEBUG" in output, "the server ran with debug logging"
    assert leaks(output, [marker]) == []
    # The same scan finds the marker in a line that holds it.
    assert leaks(output + f"DEBUG chat from Ann: {texts['accepted']}\n", [marker]) != []
