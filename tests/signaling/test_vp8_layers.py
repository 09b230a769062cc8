"""VP8 temporal layers: descriptor parsing, layer dropping that a subscriber never sees as loss,
and switching up only where the higher layer is decodable (signaling/vp8_layers.py)."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc import RTCPeerConnection
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import RtcpRtpfbPacket, RtpPacket
from hypothesis import given
from hypothesis import strategies as st

from signaling import aiortc_hooks
from signaling.client import PatternVideoTrack
from signaling.forwarding import Outbound, Publication, is_vp8_keyframe_start
from signaling.relay import _codec_preferences
from signaling.vp8_layers import ALL_LAYERS, LayerRates, LayerSelector, parse_vp8_descriptor

from ..signaling.test_aiortc_hooks import connect, loopback_candidates  # noqa: F401 - fixture
from ..signaling.test_relay import wait_until

L1T3_PATTERN = (0, 2, 1, 2)
"""The temporal layer of each frame in an L1T3 cycle (libvpx's and Chromium's pattern)."""


def descriptor(
    *,
    picture_id: int | None = 0,
    tid: int | None = 0,
    sync: bool = False,
    start: bool = True,
    keyframe: bool = False,
    tl0: int | None = 0,
    wide_picture_id: bool = True,
) -> bytes:
    """A VP8 payload descriptor and payload header, per RFC 7741 section 4.2."""
    extension = (0x80 if picture_id is not None else 0) | (0x40 if tl0 is not None else 0)
    extension |= 0x20 if tid is not None else 0
    out = bytearray([0x80 | (0x10 if start else 0), extension])
    if picture_id is not None:
        if wide_picture_id:
            out += bytes([0x80 | (picture_id >> 8), picture_id & 0xFF])
        else:
            out.append(picture_id & 0x7F)
    if tl0 is not None:
        out.append(tl0)
    if tid is not None:
        out.append((tid << 6) | (0x20 if sync else 0))
    out.append(0x00 if keyframe else 0x01)  # VP8 payload header: P bit
    return bytes(out) + bytes(40)


def l1t3_stream(
    frames: int, first_seq: int = 1000, sync_every: int = 0, first_picture: int = 100
) -> list[tuple[int, bytes]]:
    """(sequence number, payload) of an L1T3 stream: a keyframe, then the 0-2-1-2 cycle, each
    frame two packets. Every ``sync_every``-th cycle (and the first) sets Y on its layer 1 and
    layer 2 frames, as an encoder does after a keyframe."""
    packets: list[tuple[int, bytes]] = []
    seq, tl0 = first_seq, 0
    for frame in range(frames):
        tid = L1T3_PATTERN[frame % 4]
        cycle = frame // 4
        tl0 = (tl0 + 1) & 0xFF if tid == 0 and frame else tl0
        sync = tid > 0 and (cycle == 0 or (sync_every > 0 and cycle % sync_every == 0))
        for part in range(2):
            payload = descriptor(
                picture_id=(first_picture + frame) & 0x7FFF,
                tid=tid,
                sync=sync,
                start=part == 0,
                keyframe=frame == 0,
                tl0=tl0,
            )
            packets.append((seq & 0xFFFF, payload))
            seq += 1
    return packets


def run_selector(
    selector: LayerSelector, packets: list[tuple[int, bytes]]
) -> list[tuple[int, int, int]]:
    """(output sequence number, tid, output picture id) of each packet the selector forwards."""
    out: list[tuple[int, int, int]] = []
    for seq, payload in packets:
        parsed = parse_vp8_descriptor(payload)
        admitted = selector.admit(seq, parsed, payload, 0)
        if admitted is not None:
            shift, sent = admitted
            picture_id = parse_vp8_descriptor(sent).picture_id
            assert picture_id is not None
            out.append(((seq - shift) & 0xFFFF, parsed.tid, picture_id))
    return out


def gaps(numbers: list[int], modulus: int) -> list[int]:
    """Where a run of sequence numbers (or picture ids) skips: what a receiver counts as loss."""
    return [b for a, b in itertools.pairwise(numbers) if (b - a) % modulus > 1]


def test_the_gap_check_sees_a_gap() -> None:  # test of the test
    assert gaps([1, 2, 4], 1 << 16) == [4]
    assert gaps([0xFFFE, 0xFFFF, 0, 1], 1 << 16) == []
    # Dropping layer 2 without rewriting is exactly what it must catch.
    kept = [seq for seq, p in l1t3_stream(16) if parse_vp8_descriptor(p).tid < 2]
    assert gaps(kept, 1 << 16)


@pytest.mark.parametrize(
    ("payload", "tid", "sync", "picture_id", "keyframe", "start"),
    [
        (descriptor(picture_id=0x1234, tid=2, sync=True), 2, True, 0x1234, False, True),
        (descriptor(picture_id=77, tid=1, wide_picture_id=False), 1, False, 77, False, True),
        (descriptor(picture_id=None, tid=1, tl0=None), 1, False, None, False, True),
        (descriptor(tid=None, keyframe=True), 0, False, 0, True, True),
        (descriptor(tid=0, keyframe=True, start=False), 0, False, 0, False, False),
        (b"\x90\x10\x05\x00", 0, False, None, True, True),  # K without T: no layer id
        (b"\x90\xa0", 0, False, None, False, False),  # truncated: read as nothing special
        (b"", 0, False, None, False, False),
    ],
)
def test_descriptor_fields(
    payload: bytes, tid: int, sync: bool, picture_id: int | None, keyframe: bool, start: bool
) -> None:
    parsed = parse_vp8_descriptor(payload)
    assert (parsed.tid, parsed.layer_sync, parsed.picture_id) == (tid, sync, picture_id)
    assert (parsed.keyframe, parsed.frame_start) == (keyframe, start)


@given(st.binary(max_size=32))
def test_parsing_agrees_with_the_keyframe_check_and_never_raises(payload: bytes) -> None:
    assert parse_vp8_descriptor(payload).keyframe is is_vp8_keyframe_start(payload)


async def test_real_libvpx_packets_parse_as_whole_frames_of_layer_zero() -> None:
    """aiortc's libvpx encoder and packetizer: a picture id per frame, one frame start each,
    keyframes where asked, and no layer id (such a stream is never thinned)."""
    track, encoder = PatternVideoTrack(width=320, height=240), Vp8Encoder()
    pictures: list[int] = []
    for index in range(6):
        frame = await track.recv()
        payloads, _ = await asyncio.get_running_loop().run_in_executor(
            None, encoder.encode, frame, index == 3
        )
        parsed = [parse_vp8_descriptor(p) for p in payloads]
        assert [p.frame_start for p in parsed] == [True] + [False] * (len(parsed) - 1)
        assert parsed[0].keyframe is (index in (0, 3))
        assert {p.picture_id for p in parsed} == {parsed[0].picture_id}
        assert all(p.tid == 0 for p in parsed)
        assert parsed[0].picture_id is not None
        pictures.append(parsed[0].picture_id)
    assert gaps(pictures, 1 << 15) == []


def test_dropping_layers_leaves_no_gap_in_sequence_numbers_or_picture_ids() -> None:
    selector = LayerSelector()
    stream = l1t3_stream(40)
    forwarded = run_selector(selector, stream[:8])  # a keyframe and a cycle: everything
    selector.set_target(0)
    forwarded += run_selector(selector, stream[8:])
    assert [tid for _, tid, _ in forwarded[8:]] == [0] * len(forwarded[8:])
    assert len(forwarded) == 8 + 2 * 9  # 9 more layer-0 frames of two packets
    assert gaps([seq for seq, _, _ in forwarded], 1 << 16) == []
    assert gaps(sorted({pid for _, _, pid in forwarded}), 1 << 15) == []


def outputs(selector: LayerSelector, packets: list[tuple[int, bytes]]) -> dict[int, int]:
    """Output sequence number of each input one the selector forwards."""
    mapped: dict[int, int] = {}
    for seq, payload in packets:
        admitted = selector.admit(seq, parse_vp8_descriptor(payload), payload, 0)
        if admitted is not None:
            mapped[seq] = (seq - admitted[0]) & 0xFFFF
    return mapped


def _fresh(target: int, top: int = 2) -> LayerSelector:
    selector = LayerSelector()
    selector.set_target(target, top=top)
    return selector


def test_a_late_packet_is_numbered_by_what_was_dropped_before_it_only() -> None:
    stream = l1t3_stream(12)
    # Frame 2 (layer 1) starts late: after frame 3 (layer 2, dropped) has gone by.
    reordered = stream[:4] + stream[5:8] + [stream[4]] + stream[8:]
    assert outputs(_fresh(1), reordered) == outputs(_fresh(1), stream)
    # And the inverse, for a subscriber's NACK, finds the incoming number again.
    selector = _fresh(1)
    for seq, out in outputs(selector, stream).items():
        assert selector.input_sequence_number(out) == seq


def test_switching_up_waits_for_a_sync_point_of_the_next_layer() -> None:
    selector = _fresh(0)
    run_selector(selector, l1t3_stream(8))
    selector.set_target(ALL_LAYERS, top=2)
    # Cycles 2-3 carry no sync bit: their layer 1 and 2 frames reference frames never sent.
    sent = run_selector(selector, l1t3_stream(16, sync_every=0)[16:32])
    assert {tid for _, tid, _ in sent} == {0}
    assert selector.current == 0 and selector.refused_switches > 0
    # Cycle 5 is synced: its layer 2 frame comes first and is refused (layer 1 is not there
    # yet), then layer 1 with Y, then layer 2 with Y: every layer from there.
    sent = run_selector(selector, l1t3_stream(24, sync_every=5)[32:48])
    assert [tid for _, tid, _ in sent[::2]] == [0, 0, 1, 2]
    assert selector.current == ALL_LAYERS


def test_a_keyframe_switches_up_at_once_and_ends_picture_id_rewriting() -> None:
    selector = _fresh(0)
    run_selector(selector, l1t3_stream(12))
    selector.set_target(ALL_LAYERS, top=2)
    restart = l1t3_stream(8, first_seq=1024, first_picture=112)  # starts with a keyframe
    sent = run_selector(selector, restart)
    assert len(sent) == len(restart) and selector.current == ALL_LAYERS
    assert [pid for _, _, pid in sent[::2]] == list(range(112, 120))  # its real picture ids


def test_layer_rates_choose_what_fits() -> None:
    now = [0.0]
    rates = LayerRates(lambda: now[0])
    for frame in range(30):  # one second of L1T3 at 30 fps
        tid = L1T3_PATTERN[frame % 4]
        rates.add(tid, 5000 if tid == 0 else 2500)
        now[0] += 1 / 30
    now[0] = 1.01
    rates.add(0, 0)
    assert rates.top_layer == 2
    total = rates.cumulative(2)
    assert rates.highest_within(total * 1.01) == ALL_LAYERS
    assert rates.highest_within(rates.cumulative(1) * 1.01) == 1
    assert rates.highest_within(rates.cumulative(0) * 0.5) == 0  # never nothing


# --- through real aiortc peers --------------------------------------------------------------


@pytest.fixture
async def peers() -> AsyncIterator[tuple[RTCPeerConnection, RTCPeerConnection, RTCPeerConnection]]:
    relay, subscriber, publisher_side = (
        RTCPeerConnection(),
        RTCPeerConnection(),
        RTCPeerConnection(),
    )
    yield relay, subscriber, publisher_side
    for pc in (relay, subscriber, publisher_side):
        await pc.close()


async def test_dropped_layers_reach_the_subscriber_as_a_whole_stream_never_nacked(
    peers: tuple[RTCPeerConnection, RTCPeerConnection, RTCPeerConnection],
) -> None:
    """A real Outbound to a real aiortc subscriber (its own NACK generator running): with layer 2
    dropped, the subscriber sees contiguous sequence numbers and picture ids and NACKs nothing;
    a real gap afterwards is NACKed, which proves the NACK path was open all along."""
    relay, subscriber, publisher_side = peers
    publication = Publication(
        "p", "video", publisher_side.addTransceiver("video", direction="recvonly").receiver
    )
    transceiver = relay.addTransceiver("video", direction="sendonly")
    transceiver.setCodecPreferences(_codec_preferences("video"))
    outbound = Outbound("video", transceiver.sender)
    outbound.bind(publication)
    nacked: list[int] = []
    sender: Any = transceiver.sender
    handle = sender._handle_rtcp_packet

    async def record(packet: Any) -> None:
        if isinstance(packet, RtcpRtpfbPacket):
            nacked.extend(packet.lost)
        await handle(packet)

    sender._handle_rtcp_packet = record
    await connect(relay, subscriber)
    received: list[RtpPacket] = []

    async def on_packet(packet: RtpPacket) -> None:
        received.append(packet)

    aiortc_hooks.tap_receiver(subscriber.getTransceivers()[0].receiver, on_packet)
    state = outbound._sender
    await wait_until(state.ready, 10, "sender ready")
    match = re.search(r"a=rtpmap:(\d+) VP8/90000", relay.localDescription.sdp)
    assert match is not None

    def feed(seq: int, payload: bytes) -> None:
        packet = RtpPacket(
            payload_type=int(match.group(1)),
            sequence_number=seq,
            timestamp=seq * 1500,
            ssrc=1234,
            payload=payload,
        )
        template = outbound.template(packet)
        assert template is not None
        parsed = parse_vp8_descriptor(payload)
        outbound.forward(packet, template, parsed.keyframe, parsed)

    stream = l1t3_stream(48)
    for index, (seq, payload) in enumerate(stream):
        if index == 16:
            outbound.layers.set_target(1)  # the subscriber's share no longer fits layer 2
        feed(seq, payload)
        await asyncio.sleep(0.002)
    await wait_until(lambda: len(received) >= 16 + 40, 5, "forwarded packets")
    # The sentinel: a packet of layer 0 lost upstream, a gap the subscriber must NACK.
    last = stream[-1][0]
    feed(last + 2, descriptor(picture_id=200, tid=0, tl0=99))
    await wait_until(lambda: nacked != [], 5, "the sentinel's NACK")
    out = [p.sequence_number for p in received]
    assert nacked == [(out[-1] - 1) & 0xFFFF]  # only the sentinel's gap, nothing dropped
    assert gaps(out[:-1], 1 << 16) == []
    layers = [parse_vp8_descriptor(p.payload) for p in received[16:-1]]
    assert {d.tid for d in layers} == {0, 1}
    pictures = sorted({d.picture_id for d in layers if d.picture_id is not None})
    assert gaps(pictures, 1 << 15) == []
