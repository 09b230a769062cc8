"""Who is speaking, through the real server with real aiortc peers, in both relay modes: the relay
reads the RFC 6464 level aiortc writes into each microphone packet (never decoding) and tells
everyone, the speaker included, in ``speakers`` messages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from signaling.client import ParticipantClient, ToneAudioTrack

from ..conftest import RunningServer, start_server, test_settings

SPEECH = 8000
"""Tone amplitude at about -15 dBov: speech level to the relay."""


@pytest.fixture(params=[0, 1], ids=["in-process", "worker"])
async def any_server(request: pytest.FixtureRequest) -> AsyncIterator[RunningServer]:
    running, runner = await start_server(test_settings(relay_workers=request.param))
    yield running
    await runner.cleanup()


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def round_trip(client: ParticipantClient) -> None:
    """A ping and its pong: the server has handled all this client sent before."""
    mark = len(client.messages)
    await client.send({"type": "ping"})
    await client.next_message("pong", 10, since=mark)


def speaking_reports(messages: list[dict[str, Any]], who: str) -> list[dict[str, Any]]:
    """The ``speakers`` messages among ``messages`` that call ``who`` speaking or dominant."""
    return [
        m
        for m in messages
        if m.get("type") == "speakers" and (who in m["speaking"] or m["dominant"] == who)
    ]


def frames_from(client: ParticipantClient, who: str) -> int:
    stream = client.audio_from(who)
    return 0 if stream is None else stream.frames


def reports_as_dominant_speaker(client: ParticipantClient, who: str) -> bool:
    latest = client.speakers[-1] if client.speakers else None
    return latest is not None and latest["dominant"] == who and who in latest["speaking"]


def test_the_never_speaking_check_sees_a_speaker() -> None:
    """The test of the test: the negative check reports a message that names the id, as
    speaking or as dominant, and nothing else."""
    messages: list[dict[str, Any]] = [
        {"type": "speakers", "dominant": None, "speaking": []},
        {"type": "pong"},
        {"type": "speakers", "dominant": "a", "speaking": ["a"]},
        {"type": "speakers", "dominant": "a", "speaking": ["a", "b"]},
        {"type": "speakers", "dominant": "b", "speaking": []},
    ]
    assert len(speaking_reports(messages, "a")) == 2
    assert len(speaking_reports(messages, "b")) == 2
    assert speaking_reports(messages, "c") == []


async def test_a_speaker_is_reported_to_everyone_and_a_silent_one_never(
    any_server: RunningServer,
) -> None:
    room_id = any_server.new_room()
    url = any_server.base_url
    speaker = ParticipantClient(url, room_id, name="speaker", audio=ToneAudioTrack(SPEECH))
    silent = ParticipantClient(url, room_id, name="silent", audio=ToneAudioTrack(0))
    listener = ParticipantClient(url, room_id, name="listener", audio=ToneAudioTrack(0))
    clients = (speaker, silent, listener)
    try:
        for client in clients:
            await client.join()
        sid, quiet = speaker.participant_id or "", silent.participant_id or ""
        for client in clients:  # the speaker itself too
            await wait_until(
                lambda client=client: reports_as_dominant_speaker(client, sid),  # type: ignore[misc]
                20,
                "the speaker reported speaking and dominant",
            )
        # The ticks ran (the speaker is reported) while the silent one sent its packets:
        # after a round trip, no message to anyone ever named it.
        for client in clients:
            await round_trip(client)
            assert speaking_reports(client.messages, quiet) == []
            assert speaking_reports(client.messages, sid)  # the same check sees the speaker
        # Its packets did reach the relay (silence counted, not missing audio).
        await wait_until(lambda: frames_from(listener, quiet) > 10, 20, "the silent one's audio")
    finally:
        for client in clients:
            await client.close()


async def test_a_host_muted_speaker_stops_being_reported_and_never_speaks_while_muted(
    any_server: RunningServer,
) -> None:
    room_id = any_server.new_room()
    meetnow = any_server.meetnow
    room = meetnow.rooms.get_room(room_id)
    assert room is not None
    url = any_server.base_url
    host = ParticipantClient(
        url, room_id, name="host", host_token=meetnow.rooms.issue_host_token(room)
    )
    speaker = ParticipantClient(url, room_id, name="speaker", audio=ToneAudioTrack(SPEECH))
    try:
        await host.join()
        await speaker.join()
        sid = speaker.participant_id or ""
        await wait_until(lambda: reports_as_dominant_speaker(host, sid), 20, "the speaker")
        await host.send({"type": "mute", "participant_id": sid, "muted": True})
        await wait_until(
            lambda: bool(host.speakers) and not speaking_reports(host.speakers[-1:], sid),
            20,
            "the muted speaker no longer reported",
        )
        await round_trip(host)
        muted_from = len(host.messages)
        # Unmuted again it is reported again: the ticks ran all along while it was muted, and
        # nothing in between called it speaking.
        await host.send({"type": "mute", "participant_id": sid, "muted": False})
        unmuted = await host.next_message("participant_updated", 10, since=muted_from)
        unmuted_at = host.messages.index(unmuted)
        await wait_until(lambda: reports_as_dominant_speaker(host, sid), 20, "heard again")
        assert speaking_reports(host.messages[muted_from:unmuted_at], sid) == []
    finally:
        await host.close()
        await speaker.close()
