"""Keyframe detection on real VP8 payloads, packetized by aiortc's own VP8 encoder."""

from __future__ import annotations

import asyncio

import pytest
from aiortc.codecs.vpx import Vp8Encoder
from hypothesis import given
from hypothesis import strategies as st

from signaling.client import PatternVideoTrack
from signaling.forwarding import is_vp8_keyframe_start


async def encoded_frames(count: int, keyframe_at: set[int]) -> list[list[bytes]]:
    track = PatternVideoTrack(width=320, height=240)
    encoder = Vp8Encoder()
    frames = []
    for index in range(count):
        frame = await track.recv()
        payloads, _ = await asyncio.get_running_loop().run_in_executor(
            None, encoder.encode, frame, index in keyframe_at
        )
        frames.append(payloads)
    return frames


async def test_first_packet_of_each_keyframe_and_nothing_else_is_a_keyframe_start() -> None:
    frames = await encoded_frames(12, keyframe_at={0, 7})
    for index, payloads in enumerate(frames):
        assert payloads, "the encoder produced no packet"
        assert is_vp8_keyframe_start(payloads[0]) is (index in {0, 7}), index
        # Continuation packets of a frame never count as the start of a keyframe.
        assert not any(is_vp8_keyframe_start(p) for p in payloads[1:])


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", False),
        (b"\x10", False),  # descriptor only
        (b"\x10\x00", True),  # S=1, PID=0, no extension, P bit clear
        (b"\x10\x01", False),  # P bit set: interframe
        (b"\x00\x00", False),  # S=0: not a frame start
        (b"\x11\x00", False),  # partition 1
        (b"\x90\x80\x81\x23\x00", True),  # X, I with 15-bit picture id, keyframe
        (b"\x90\x80\x05\x00", True),  # X, I with 7-bit picture id
        (b"\x90\xf0\x05\x01\x02\x00", True),  # X with I, L, T/K
        (b"\x90\x80", False),  # truncated extension
        (b"\x90\x80\x81", False),  # truncated picture id
    ],
)
def test_descriptor_variants(payload: bytes, expected: bool) -> None:
    assert is_vp8_keyframe_start(payload) is expected


@given(st.binary(max_size=64))
def test_never_raises_on_arbitrary_bytes(payload: bytes) -> None:
    assert is_vp8_keyframe_start(payload) in (True, False)
