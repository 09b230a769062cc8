"""VP8 temporal layers for the load generator: how libvpx is asked for them, and a packetizer that
writes them into each packet's payload descriptor the way a browser does.

Browsers publish ``L1T3``: frames in the pattern of temporal layer ids 0, 2, 1, 2, where layer 0
frames reference only layer 0, layer 1 frames only layers 0-1, and nobody references layer 2, so
a relay can drop layers 2 (and 1) for a subscriber that cannot take the whole stream
(:mod:`signaling.vp8_layers`). libvpx builds that structure itself (FFmpeg's ``ts-parameters``,
``ts_layering_mode``); error resilience keeps the entropy state from carrying over between frames,
so a dropped frame leaves the next one decodable. aiortc's own packetizer (``pack()``) writes no
temporal fields, hence :class:`LayeredVp8Packetizer`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

__all__ = [
    "L1T2",
    "L1T3",
    "PACKET_MAX",
    "LayeredVp8Packetizer",
    "TemporalPattern",
    "pattern_for",
]

PACKET_MAX = 1300
"""Largest RTP payload, descriptor included (as aiortc's VP8 packetizer)."""


@dataclass(frozen=True)
class TemporalPattern:
    """One period of a temporal layering, frame by frame from the keyframe on."""

    layer_ids: tuple[int, ...]
    """TID of each frame of the period."""
    layer_sync: tuple[bool, ...]
    """Y bit of each frame: it references only layer 0 (a subscriber may switch up to its layer
    there). Layer 0 frames are no sync points by definition (as libwebrtc marks them)."""
    referenced: tuple[bool, ...]
    """Whether a later frame references it (False: the N bit, a non-reference frame)."""
    layering_mode: int
    """FFmpeg's ``ts_layering_mode`` that encodes exactly this pattern."""
    rate_shares: tuple[float, ...]
    """Cumulative share of the bitrate for layers 0, 0-1, ... (libwebrtc's allocation)."""

    @property
    def layers(self) -> int:
        return len(self.rate_shares)

    def codec_options(self, bitrate: int) -> dict[str, str]:
        """libvpx options (through FFmpeg) that encode this pattern at ``bitrate`` bit/s."""
        targets = ",".join(str(round(bitrate * share / 1000)) for share in self.rate_shares)
        decimators = ",".join(str(2 ** (self.layers - 1 - layer)) for layer in range(self.layers))
        parameters = (
            f"ts_number_layers={self.layers}:ts_target_bitrate={targets}"
            f":ts_rate_decimator={decimators}:ts_periodicity={len(self.layer_ids)}"
            f":ts_layer_id={','.join(map(str, self.layer_ids))}"
            # Last: FFmpeg applies the mode's own reference flags over what came before.
            f":ts_layering_mode={self.layering_mode}"
        )
        return {"ts-parameters": parameters, "error-resilient": "default"}


# FFmpeg's ts_layering_mode 3: TL0 references and updates LAST only; TL1 references LAST and
# updates GOLDEN; the first TL2 references LAST, the second GOLDEN (TL1), and updates nothing.
L1T3 = TemporalPattern(
    layer_ids=(0, 2, 1, 2),
    layer_sync=(False, True, True, False),
    referenced=(True, False, True, False),
    layering_mode=3,
    rate_shares=(0.4, 0.6, 1.0),
)
# Mode 2: TL0 references and updates LAST; TL1 references LAST and updates nothing.
L1T2 = TemporalPattern(
    layer_ids=(0, 1),
    layer_sync=(False, True),
    referenced=(True, False),
    layering_mode=2,
    rate_shares=(0.6, 1.0),
)


def pattern_for(layers: int) -> TemporalPattern | None:
    """The pattern of ``layers`` temporal layers (None for 1: no layering)."""
    patterns = {1: None, 2: L1T2, 3: L1T3}
    if layers not in patterns:
        raise ValueError("temporal layers must be 1, 2 or 3")
    return patterns[layers]


class LayeredVp8Packetizer:
    """Packetizes pre-encoded VP8 frames of a :class:`TemporalPattern` with the payload
    descriptor a browser writes for ``L1T3``: a 15-bit picture id (I, M), TL0PICIDX (L), and
    TID with the layer-sync bit (T, Y), N for frames nothing references. Each packet handed in
    (an ``av.Packet``) carries in ``opaque`` its frame's index in the pattern's loop, which
    starts on a keyframe. Stands in for aiortc's encoder on a sender (its ``pack()``)."""

    def __init__(self, pattern: TemporalPattern, rng: random.Random | None = None) -> None:
        draw = rng or random.Random()  # noqa: S311 - ids, not secrets
        self.pattern = pattern
        self.picture_id = draw.randrange(1 << 15)
        self.tl0_pic_idx = draw.randrange(1 << 8)
        self._started = False

    def descriptor(self, index: int, keyframe: bool) -> bytes:
        """The descriptor of frame ``index`` of the loop (first packet; S bit set), and step the
        picture id and TL0PICIDX as a new frame does."""
        period = len(self.pattern.layer_ids)
        position = index % period
        tid = self.pattern.layer_ids[position]
        if self._started:
            self.picture_id = (self.picture_id + 1) & 0x7FFF
            if tid == 0:
                self.tl0_pic_idx = (self.tl0_pic_idx + 1) & 0xFF
        self._started = True
        sync = keyframe or self.pattern.layer_sync[position]
        non_reference = not keyframe and not self.pattern.referenced[position]
        first = 0x80 | (0x20 if non_reference else 0) | 0x10  # X, N, S; partition 0
        return bytes(
            (
                first,
                0xE0,  # I, L, T (no K)
                0x80 | (self.picture_id >> 8),  # M: 15-bit picture id
                self.picture_id & 0xFF,
                self.tl0_pic_idx,
                (tid << 6) | (0x20 if sync else 0),  # TID, Y, KEYIDX 0
            )
        )

    def packetize(self, frame: bytes, index: int) -> list[bytes]:
        """RTP payloads of one frame; only the first has the S bit."""
        head = bytearray(self.descriptor(index, keyframe=not frame[0] & 0x01))
        room = PACKET_MAX - len(head)
        payloads = []
        for start in range(0, len(frame), room):
            payloads.append(bytes(head) + frame[start : start + room])
            head[0] &= ~0x10 & 0xFF  # continuation packets: S clear
        return payloads

    def pack(self, packet: Any) -> tuple[list[bytes], int]:
        """aiortc's encoder interface for pre-encoded media: (payloads, 90 kHz timestamp)."""
        timestamp = int(packet.pts * packet.time_base * 90_000)
        return self.packetize(bytes(packet), int(packet.opaque)), timestamp
