"""The load generator's temporal layers (signaling/synthetic_layers.py): libvpx's frames really
have the L1T3 reference structure, the packetizer writes what signaling/vp8_layers.py reads, a
relay subscriber held to layer 0 gets a quarter of the frames as a whole stream, and a
downlink-only cap leaves a participant's own publication alone."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Iterator, Sequence

import av
import numpy
import pytest

from signaling.client import ParticipantClient
from signaling.impairment import Impairment
from signaling.loadtest import run_loadtest
from signaling.synthetic_layers import L1T3, PACKET_MAX, LayeredVp8Packetizer
from signaling.synthetic_media import (
    EncodedAudioTrack,
    EncodedMedia,
    EncodedVideoTrack,
    encode_media,
    encode_vp8,
)
from signaling.vp8_layers import parse_vp8_descriptor

from ..conftest import RunningServer
from .test_receiver_bandwidth import remb_sender
from .test_relay import wait_until


@pytest.fixture(scope="module")
def layered() -> EncodedMedia:
    return encode_media(320, 240, seconds=1.0, bitrate=400_000, layers=3)


@pytest.fixture(scope="module")
def single_layer() -> EncodedMedia:
    return encode_media(320, 240, seconds=1.0, bitrate=400_000)


def decoded(frames: Sequence[bytes]) -> list[numpy.ndarray]:
    """Every picture libvpx decodes from ``frames`` in order (one per frame)."""
    decoder = av.CodecContext.create("libvpx", "r")
    pictures = []
    for frame in frames:
        for picture in decoder.decode(av.Packet(frame)):
            pictures.append(picture.to_ndarray(format="yuv420p").copy())
    return pictures


def decode_mismatches(frames: Sequence[bytes], kept: Sequence[int]) -> list[int]:
    """Decode only the frames ``kept`` (indices, in order) and return those whose picture is
    not bit for bit the one the whole stream decodes to, or that did not decode at all. VP8
    decoders do not notice a missing reference (VP8 has no frame numbers): a frame decoded from
    the wrong references shows only in its pixels."""
    whole = decoded(frames)
    try:
        part = decoded([frames[index] for index in kept])
    except av.error.FFmpegError:
        return list(kept)
    bad = [
        index
        for index, picture in zip(kept, part, strict=False)
        if not (picture == whole[index]).all()
    ]
    return bad + list(kept[len(part) :])


def layer_frames(media: EncodedMedia, highest: int) -> list[int]:
    return [index for index in range(len(media.video)) if media.layer_of(index) <= highest]


def panning(frames: int = 28, width: int = 320, height: int = 240) -> Iterator[numpy.ndarray]:
    """A smooth texture panning across the whole picture: every block is predicted from the
    reference frame, so a frame decoded from the wrong one always shows (the load generator's
    own pattern is mostly a still background, where a wrong reference can go unseen)."""
    y, x = numpy.mgrid[0:height, 0 : width * 2]
    texture = 128 + 60 * numpy.sin(x / 7.0) + 60 * numpy.cos(y / 5.0 + x / 13.0)
    texture = texture.clip(0, 255).astype(numpy.uint8)
    for index in range(frames):
        planes = [texture[:, shift : shift + width] for shift in (2 * index, index, 3 * index)]
        yield numpy.ascontiguousarray(numpy.stack(planes, axis=2))


@pytest.fixture(scope="module")
def panned() -> list[bytes]:
    """L1T3 of :func:`panning`, encoded as the load generator encodes."""
    return encode_vp8(panning(), 300_000, L1T3)


def frames_of_layers(count: int, highest: int) -> list[int]:
    return [index for index in range(count) if L1T3.layer_ids[index % 4] <= highest]


def test_lower_layers_decode_alone_exactly_as_in_the_whole_stream(
    layered: EncodedMedia, panned: list[bytes]
) -> None:
    assert [layered.layer_of(index) for index in range(8)] == [0, 2, 1, 2, 0, 2, 1, 2]
    assert len(layered.video) % 4 == 0  # the loop restarts on layer 0
    assert not layered.video[0][0] & 1 and all(f[0] & 1 for f in layered.video[1:])
    for highest in (0, 1):
        assert decode_mismatches(panned, frames_of_layers(len(panned), highest)) == []
        assert decode_mismatches(layered.video, layer_frames(layered, highest)) == []


def test_layer_sync_frames_need_only_layer_zero(panned: list[bytes]) -> None:
    """A frame with the Y bit decodes right from layer 0 alone (what a relay switching up at it
    relies on); the second layer 2 frame of a period, without it, does not."""
    base = frames_of_layers(len(panned), 0)
    for index in range(len(panned)):
        kept = [*[i for i in base if i < index], index]
        if index % 4 and L1T3.layer_sync[index % 4]:
            assert decode_mismatches(panned, kept) == [], index
        elif index % 4:
            assert decode_mismatches(panned, kept) == [index]


def test_the_decode_check_sees_a_dropped_layer_zero_frame(panned: list[bytes]) -> None:
    """The test of the test: without layer 0 frame 4, the layer 0 frames after it (which
    reference it) come out wrong; so do the lower "layers" of a stream encoded without
    temporal layers, where every frame references the one before."""
    kept = [index for index in frames_of_layers(len(panned), 0) if index != 4]
    assert 8 in decode_mismatches(panned, kept)
    single = encode_vp8(panning(), 300_000)
    assert 4 in decode_mismatches(single, frames_of_layers(len(single), 0))


def test_packets_carry_the_layer_ids_sync_bits_and_indices_a_browser_writes(
    layered: EncodedMedia,
) -> None:
    packetizer = LayeredVp8Packetizer(L1T3, random.Random(3))
    frames = [*layered.video, *layered.video[:4]]  # across the loop's restart
    pictures: list[int] = []
    tl0_indices: list[int] = []
    for index, frame in enumerate(frames):
        loop_index = index % len(layered.video)
        payloads = packetizer.packetize(frame, loop_index)
        assert all(len(payload) <= PACKET_MAX for payload in payloads)
        assert b"".join(payload[6:] for payload in payloads) == frame
        descriptors = [parse_vp8_descriptor(payload) for payload in payloads]
        first = descriptors[0]
        assert first.frame_start and not any(d.frame_start for d in descriptors[1:])
        assert first.keyframe == (loop_index == 0)
        assert {d.tid for d in descriptors} == {L1T3.layer_ids[index % 4]}
        assert first.layer_sync == (loop_index == 0 or L1T3.layer_sync[index % 4])
        assert len({d.picture_id for d in descriptors}) == 1 and first.picture_id is not None
        pictures.append(first.picture_id)
        tl0_indices.append(payloads[0][4])
        assert bool(payloads[0][0] & 0x20) == (index % 2 == 1)  # N: layer 2 is never referenced
    assert all((b - a) % (1 << 15) == 1 for a, b in itertools.pairwise(pictures))
    # TL0PICIDX steps on each layer 0 frame; higher frames carry the one they depend on.
    for index in range(1, len(frames)):
        step = (tl0_indices[index] - tl0_indices[index - 1]) % 256
        assert step == (1 if index % 4 == 0 else 0)


async def test_a_subscriber_held_to_layer_zero_gets_a_quarter_of_the_frames_whole(
    server: RunningServer, layered: EncodedMedia
) -> None:
    room_id = server.new_room()
    video = EncodedVideoTrack(layered)
    publisher = ParticipantClient(
        server.base_url, room_id, "pub", audio=EncodedAudioTrack(layered), video=video, decode=False
    )
    # It sends no REMB of its own (decode=False taps packets only): just the test's.
    subscriber = ParticipantClient(server.base_url, room_id, "sub", decode=False)
    try:
        await publisher.join()
        await subscriber.join()
        assert publisher.participant_id is not None
        source = publisher.participant_id
        await wait_until(lambda: subscriber.video_from(source) is not None, 15, "the video")
        stream = subscriber.video_from(source)
        assert stream is not None
        remb, ssrc = remb_sender(subscriber, source)

        async def frame_share(seconds: float) -> float:
            """Frames received per frame sent over ``seconds``, REMB repeated as a browser does."""
            got, sent = stream.frames, video.sent
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                # Far under layer 0: the relay keeps layer 0. The value moves a little, as a
                # browser's does (the relay ignores a repeat of the same estimate).
                remb.send_remb(random.choice((60_000, 61_000)), [ssrc])
                await asyncio.sleep(0.2)
            return (stream.frames - got) / max(1, video.sent - sent)

        assert await frame_share(1.0) > 0  # flowing
        deadline = time.monotonic() + 15
        while await frame_share(1.0) > 0.4:
            assert time.monotonic() < deadline, "the relay never dropped the higher layers"
        start = time.monotonic()
        stream.mark(start)
        share = await frame_share(3.0)
        freezes, frozen = stream.window_freezes(start, time.monotonic())
        assert 0.18 <= share <= 0.32, share
        assert stream.lost == 0  # dropped layers leave no gap in the sequence numbers
        assert (freezes, frozen) == (0, 0.0)
        # Every frame it got is 4 of the sender's frames after the one before (layer 0 only).
        assert stream.sent_steps and stream.sent_ticks / stream.sent_steps >= 3.5 * 3000
    finally:
        await publisher.close()
        await subscriber.close()


CAP_KBPS = 150
CAPPED_AT_MOST = 1.5 * CAP_KBPS
"""kbit/s a capped direction may read over a 3 s window: the cap, its 16 kB burst and queue,
and a loaded machine's timing (a full-rate stream is about 3x the cap)."""


async def capped_publisher_run(
    server: RunningServer, media: EncodedMedia, direction: str
) -> list[dict[str, float]]:
    """Two synthetic participants, the second behind a ``CAP_KBPS`` cap in ``direction``."""
    room_id = server.new_room()
    result = await run_loadtest(
        f"{server.base_url}/r/{room_id}",
        2,
        3.0,
        media=media,
        join_interval=0.05,
        participant_impairments={1: Impairment(rate_kbps=CAP_KBPS, rate_direction=direction)},
    )
    return result.participants


async def test_a_downlink_only_cap_leaves_the_capped_ones_publication_at_full_rate(
    server: RunningServer, single_layer: EncodedMedia
) -> None:
    full_kbps = single_layer.video_bitrate / 1000
    free, capped = await capped_publisher_run(server, single_layer, "down")
    assert free["video_fps_min"] >= 20 and free["received_kbps"] >= 0.7 * full_kbps
    assert capped["received_kbps"] < CAPPED_AT_MOST  # its downlink is capped
    # The test of the test: capped both ways, what it publishes reaches the other capped too.
    free, capped = await capped_publisher_run(server, single_layer, "both")
    assert free["received_kbps"] < CAPPED_AT_MOST and capped["received_kbps"] < CAPPED_AT_MOST
