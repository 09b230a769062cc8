"""The relay with real WebRTC peers: aiortc participants in this process, the server in another."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from signaling.client import ParticipantClient, PatternVideoTrack, ToneAudioTrack

from ..conftest import ServerProcess
from ..support.audit_fixtures import media_participant, packets_from_everyone
from ..support.rtp_capture import (
    RtpCapture,
    SeenPacket,
    announced_ssrcs,
    compare_forwarded,
    packets_of,
    streams_by_ssrc,
)


def participant(server: ServerProcess, room_id: str, name: str) -> ParticipantClient:
    return ParticipantClient(
        server.base_url, room_id, name=name, audio=ToneAudioTrack(), video=PatternVideoTrack()
    )


async def wait_until(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def receives_all(client: ParticipantClient, others: list[ParticipantClient], frames: int) -> bool:
    for other in others:
        assert other.participant_id is not None
        video = client.video_from(other.participant_id)
        audio = client.audio_from(other.participant_id)
        if video is None or audio is None or video.frames < frames or audio.frames < frames:
            return False
    return True


async def test_three_participants_receive_and_decode_each_other_without_relay_codecs(
    server_process: ServerProcess,
) -> None:
    room_id = await server_process.create_room()
    clients = [participant(server_process, room_id, f"p{i}") for i in range(3)]
    try:
        for client in clients:
            await client.join()
        for client in clients:
            others = [c for c in clients if c is not client]
            await wait_until(
                lambda c=client, o=others: receives_all(c, o, 30), 20, f"{client.name}'s media"
            )
        for client in clients:
            for other in clients:
                if other is client:
                    continue
                assert other.participant_id is not None
                video = client.video_from(other.participant_id)
                assert video is not None
                # Decoded at the size the publisher encoded: the relay forwarded, not re-encoded.
                assert (video.width, video.height) == (320, 240)
            assert client.errors == []
    finally:
        for client in clients:
            await client.close()
    audit = server_process.stop()
    assert audit["decoders"] == 0, "the relay created a decoder"
    assert audit["encoders"] == 0, "the relay created an encoder"


async def test_late_joiner_gets_video_within_a_second_of_connecting(
    server_process: ServerProcess,
) -> None:
    room_id = await server_process.create_room()
    first, second = (
        participant(server_process, room_id, "a"),
        participant(server_process, room_id, "b"),
    )
    late = participant(server_process, room_id, "late")
    try:
        await first.join()
        await second.join()
        await wait_until(lambda: receives_all(first, [second], 10), 20, "the first pair's media")
        # Let the publishers' keyframes age: without keyframe requests the late joiner would wait
        # for the encoder's next periodic keyframe, seconds away.
        await asyncio.sleep(2)
        await late.join()
        assert late.pc is not None
        await wait_until(
            lambda: late.pc is not None and late.pc.connectionState == "connected", 10, "ICE"
        )
        connected_at = time.monotonic()
        await wait_until(lambda: receives_all(late, [first, second], 1), 5, "late joiner's video")
        for publisher in (first, second):
            assert publisher.participant_id is not None
            video = late.video_from(publisher.participant_id)
            assert video is not None and video.first_frame_at is not None
            assert video.first_frame_at - connected_at < 1.0
    finally:
        for client in (first, second, late):
            await client.close()


async def test_leave_and_rejoin_do_not_interrupt_the_others(server_process: ServerProcess) -> None:
    room_id = await server_process.create_room()
    a, b, c = (participant(server_process, room_id, n) for n in "abc")
    try:
        for client in (a, b, c):
            await client.join()
        await wait_until(lambda: receives_all(a, [b, c], 10), 20, "a's media")
        assert c.participant_id is not None and b.participant_id is not None
        c_id = c.participant_id
        mark = len(a.messages)
        await c.close()
        await a.next_message("participant_left", timeout=5, since=mark)
        assert c_id not in a.participants and c_id not in b.participants
        # a keeps receiving b throughout: count frames over a second after c left.
        b_video = a.video_from(b.participant_id)
        assert b_video is not None
        before = b_video.frames
        await asyncio.sleep(1.0)
        assert b_video.frames > before + 10
        # A newcomer reuses c's idle m-lines on a and b, and everyone sees everyone.
        d = participant(server_process, room_id, "d")
        await d.join()
        try:
            await wait_until(lambda: receives_all(a, [b, d], 10), 20, "a receiving d")
            await wait_until(lambda: receives_all(d, [a, b], 10), 20, "d receiving a and b")
            assert a.pc is not None
            # 2 own + 2 for b + 2 reused for d: no m-line was added for the newcomer.
            assert len(a.pc.getTransceivers()) == 6
        finally:
            await d.close()
    finally:
        for client in (a, b):
            await client.close()


async def test_every_forwarded_payload_is_byte_for_byte_what_the_publisher_sent(
    server_process_with_workers: ServerProcess,
) -> None:
    """Through the default deployment (relay workers): every RTP packet each subscriber decrypts
    is a packet its publisher sent, payload byte for byte; only SSRC, sequence number and
    timestamp differ, by one offset per stream (``tests/support/rtp_capture.py``)."""
    server = server_process_with_workers
    room_id = await server.create_room()
    clients = [media_participant(server.base_url, room_id, f"bytes-{i}") for i in range(3)]
    with RtpCapture() as capture:
        try:
            for client in clients:
                await client.join()
            await wait_until(lambda: packets_from_everyone(clients, 100), 30, "media")
            # Who sends on which SSRC, by the offers so far (those sent after a leave, below,
            # no longer name the one who left).
            owners = {
                client.name: announced_ssrcs(
                    [m for m in client.messages if m["type"] == "offer"][-1]
                )
                for client in clients
            }
        finally:
            for client in clients:
                await client.close()
    publishers = {client.participant_id: client for client in clients}
    checked: list[tuple[str, list[SeenPacket], list[SeenPacket]]] = []
    for subscriber in clients:
        assert subscriber.pc is not None
        received = streams_by_ssrc(list(packets_of(capture.received, subscriber.pc)))
        assert len(received) == 4, "two streams from each of the two others"
        for ssrc, packets in received.items():
            publisher_id, kind = owners[subscriber.name][ssrc]
            publisher = publishers[publisher_id]
            assert publisher is not subscriber and publisher.pc is not None
            sent = [
                p
                for p in packets_of(capture.sent, publisher.pc)
                if p.payload_type == packets[0].payload_type
            ]
            assert len(packets) >= 100, (kind, len(packets))
            assert compare_forwarded(sent, packets) == [], (subscriber.name, publisher.name, kind)
            checked.append((kind, sent, packets))
    assert len(checked) == 12

    # The test of the test: the same comparison on this call's own packets, each altered once.
    _, sent, packets = next(entry for entry in checked if entry[0] == "video")
    middle = len(packets) // 2
    victim = packets[middle]
    flipped = bytes([victim.payload[-1] ^ 0x01])
    altered = {
        "one payload byte flipped": replace(victim, payload=victim.payload[:-1] + flipped),
        "one payload byte cut": replace(victim, payload=victim.payload[:-1]),
        "timestamp moved": replace(victim, timestamp=(victim.timestamp + 1) & 0xFFFFFFFF),
        "marker flipped": replace(victim, marker=1 - victim.marker),
        "a packet never sent": replace(
            victim, sequence_number=(victim.sequence_number + 30000) & 0xFFFF
        ),
    }
    for what, bad in altered.items():
        problems = compare_forwarded(sent, [*packets[:middle], bad, *packets[middle + 1 :]])
        assert len(problems) == 1, (what, problems)
        assert str(bad.sequence_number) in problems[0], (what, problems)
    assert compare_forwarded(sent, []) == ["nothing was received"]
