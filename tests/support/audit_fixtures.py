"""Audited servers and the call that drives them, for the no-transcoding tests.

``tests/conftest.py`` starts the audited forwarding server (``server_process`` and
``server_process_with_workers``); the audit tests also need the MediaRelay baseline under the same
audit, so this starts ``tests/support/audited_server.py`` with any deployment and either design.
"""

from __future__ import annotations

import asyncio
import functools
import time
from pathlib import Path

from signaling.client import ParticipantClient
from signaling.synthetic_media import (
    EncodedAudioTrack,
    EncodedMedia,
    EncodedVideoTrack,
    encode_media,
)
from tests.conftest import start_audited_server

__all__ = ["start_audited_server"]  # re-exported: the audit tests import it from here

REPO = Path(__file__).resolve().parents[2]


@functools.cache
def small_media() -> EncodedMedia:
    """320x240 VP8 and Opus, encoded once here, so the call's publishers encode nothing."""
    return encode_media(width=320, height=240, seconds=1.0, bitrate=300_000)


def media_participant(base_url: str, room_id: str, name: str) -> ParticipantClient:
    """A participant that publishes pre-encoded media and counts what arrives without decoding."""
    media = small_media()
    return ParticipantClient(
        base_url,
        room_id,
        name=name,
        audio=EncodedAudioTrack(media),
        video=EncodedVideoTrack(media),
        decode=False,
    )


def packets_from_everyone(clients: list[ParticipantClient], packets: int) -> bool:
    """Every client got at least ``packets`` audio and video packets from every other one."""
    for client in clients:
        for other in clients:
            if other is client:
                continue
            assert other.participant_id is not None
            for stream in (
                client.video_from(other.participant_id),
                client.audio_from(other.participant_id),
            ):
                if stream is None or stream.packets < packets:
                    return False
    return True


async def run_call(base_url: str, room_id: str, *, people: int = 3, packets: int = 60) -> None:
    """``people`` participants join, and stay until each received ``packets`` audio and video
    packets from every other one (so media crossed the server both ways); then they leave."""
    clients = [media_participant(base_url, room_id, f"audit-{i}") for i in range(people)]
    try:
        for client in clients:
            await client.join()
        deadline = time.monotonic() + 30
        while not packets_from_everyone(clients, packets):
            assert time.monotonic() < deadline, "media did not reach everyone through the server"
            await asyncio.sleep(0.05)
        for client in clients:
            assert client.errors == []
    finally:
        for client in clients:
            await client.close()
