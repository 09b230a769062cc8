"""VP8 temporal layers: read them from each packet, forward to a subscriber only the ones it can take.

A publisher that encodes ``L1T3`` (or ``L1T2``) marks each frame with a temporal layer id (TID) in
the VP8 payload descriptor (RFC 7741 section 4.2): layer 0 alone is a valid stream at a quarter of
the frame rate, layers 0-1 at half, 0-2 at the full rate. A subscriber whose downlink cannot take the
whole stream gets fewer frames instead of losing packets at random (which freezes video).

Dropping packets must stay invisible to the subscriber: its sequence numbers are rewritten so
dropped packets leave no gap (no NACK, no loss counted), and picture ids are rewritten so the
decoder's reference finder (which waits for every missing picture id) never waits for a dropped
frame. Going down is allowed at any frame start; going up only where the higher layer can be decoded
from what the subscriber already has: a keyframe, or a frame of the next layer with the layer-sync
(Y) bit, which references layer 0 only.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = [
    "ALL_LAYERS",
    "LayerRates",
    "LayerSelector",
    "Vp8Descriptor",
    "parse_vp8_descriptor",
]

ALL_LAYERS = 3
"""The highest TID a descriptor can carry (2 bits): "every layer"."""

RATE_WINDOW_SECONDS = 1.0
"""How often a publication's per-layer bitrates are recomputed."""

LATE_PACKET_WINDOW = 1024
"""Dropped sequence numbers remembered to place late (reordered, retransmitted) packets right."""


class Vp8Descriptor:
    """What the relay needs from one packet's VP8 payload descriptor."""

    __slots__ = ("frame_start", "keyframe", "layer_sync", "picture_id", "picture_id_at", "tid")

    def __init__(self) -> None:
        self.frame_start = False
        """First packet of a frame (S bit, partition 0)."""
        self.keyframe = False
        """First packet of a keyframe."""
        self.tid = 0
        """Temporal layer id; 0 when the descriptor carries none (then nothing is ever dropped)."""
        self.layer_sync = False
        """Y bit: the frame references layer 0 only, so a subscriber may switch up to its layer."""
        self.picture_id: int | None = None
        """Picture id (7 or 15 bits), None when absent."""
        self.picture_id_at = -1
        """Offset of the picture id in the payload; its first byte's M bit says 15 bits."""


def parse_vp8_descriptor(payload: bytes) -> Vp8Descriptor:
    """Read the payload descriptor of one VP8 RTP payload; a truncated one reads as a delta
    frame of layer 0 (forwarded to everyone, as before layers existed)."""
    descriptor = Vp8Descriptor()
    size = len(payload)
    if size < 1:
        return descriptor
    first = payload[0]
    index = 1
    if first & 0x80:  # X: extension byte
        if size < 2:
            return descriptor
        ext = payload[1]
        index = 2
        if ext & 0x80:  # I: picture id
            if size <= index:
                return descriptor
            if payload[index] & 0x80:  # M: 15 bits
                if size <= index + 1:
                    return descriptor
                descriptor.picture_id = ((payload[index] & 0x7F) << 8) | payload[index + 1]
                descriptor.picture_id_at = index
                index += 2
            else:
                descriptor.picture_id = payload[index]
                descriptor.picture_id_at = index
                index += 1
        if ext & 0x40:  # L: TL0PICIDX
            index += 1
        if ext & 0x30:  # T or K: TID | Y | KEYIDX
            if size <= index:
                return descriptor
            if ext & 0x20:
                descriptor.tid = payload[index] >> 6
                descriptor.layer_sync = bool(payload[index] & 0x20)
            index += 1
    if first & 0x10 and not first & 0x0F:  # S and partition 0: the frame's first packet
        descriptor.frame_start = True
        descriptor.keyframe = size > index and not payload[index] & 0x01  # P bit clear
    return descriptor


class LayerRates:
    """The bitrate of each temporal layer of one publication, measured over about a second."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._bytes = [0] * (ALL_LAYERS + 1)
        self._window_start = clock()
        self.rates: list[float] = [0.0] * (ALL_LAYERS + 1)
        """Bits per second of each layer alone (last window, smoothed)."""
        self.top_layer = 0
        """Highest TID seen lately: 0 means the stream has no temporal layers."""

    def add(self, tid: int, size: int) -> None:
        self._bytes[tid] += size
        now = self._clock()
        elapsed = now - self._window_start
        if elapsed >= RATE_WINDOW_SECONDS:
            top = 0
            for layer, count in enumerate(self._bytes):
                measured = count * 8 / elapsed
                self.rates[layer] = (
                    measured if self.rates[layer] == 0 else ((self.rates[layer] + measured) / 2)
                )
                if count:
                    top = layer
                self._bytes[layer] = 0
            self.top_layer = top
            self._window_start = now

    def cumulative(self, tid: int) -> float:
        """Bits per second of layers 0 to ``tid``."""
        return sum(self.rates[: tid + 1])

    def highest_within(self, bitrate: float) -> int:
        """The most layers that fit in ``bitrate`` (ALL_LAYERS when everything fits or the
        stream has no layers; layer 0 even when nothing fits: fewer frames, never none)."""
        if self.top_layer == 0 or self.cumulative(self.top_layer) <= bitrate:
            return ALL_LAYERS
        layer = 0
        while layer + 1 < self.top_layer and self.cumulative(layer + 1) <= bitrate:
            layer += 1
        return layer


def _newer(a: int, b: int) -> bool:
    """Whether 16-bit sequence number ``a`` comes after ``b`` (RFC 1982 serial arithmetic)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


class LayerSelector:
    """One subscriber's view of one video publication: which layers it gets, and the rewriting
    that hides the dropped ones. While it takes every layer and has nothing left to rewrite it is
    not ``engaged``: the forwarder then skips it and only subtracts :attr:`seq_shift`."""

    def __init__(self) -> None:
        self.target = ALL_LAYERS
        """Layers the subscriber's bandwidth allows (set from its feedback)."""
        self.current = ALL_LAYERS
        """Layers forwarded now (follows ``target`` at frame starts and sync points)."""
        self.engaged = False
        """Whether packets must go through :meth:`admit`."""
        self.seq_shift = 0
        """Packets dropped so far: subtracted from every later sequence number."""
        self.refused_switches = 0
        """Frame starts where a switch up was wanted but the frame was no sync point."""
        self._top = ALL_LAYERS
        self._pic_shift = 0
        self._last_dropped_picture: int | None = None
        self._highest_seq: int | None = None
        self._dropped: deque[int] = deque(maxlen=LATE_PACKET_WINDOW)

    def set_target(self, layer: int, top: int = ALL_LAYERS) -> None:
        """Forward layers up to ``layer`` from the next possible frame on. ``top`` is the
        highest layer the stream has: reaching it at a sync point means "every layer"."""
        self._top = top
        if layer != self.target:
            self.target = layer
            self.engaged = True

    def admit(
        self, sequence_number: int, descriptor: Vp8Descriptor, template: bytes, payload_at: int
    ) -> tuple[int, bytes] | None:
        """Decide for one packet: None to drop it, else the number to subtract from its sequence
        number and the template to send (with the picture id rewritten when frames were
        dropped before). ``payload_at`` is where the RTP payload starts in ``template``."""
        if descriptor.frame_start:
            self._follow_target(descriptor)
        forward = descriptor.tid <= self.current
        highest = self._highest_seq
        in_order = highest is None or _newer(sequence_number, highest)
        if in_order:
            self._highest_seq = sequence_number
        if not forward:
            if in_order:
                self.seq_shift += 1
                self._dropped.append(sequence_number)
                picture = descriptor.picture_id
                if picture is not None and picture != self._last_dropped_picture:
                    self._last_dropped_picture = picture
                    self._pic_shift += 1
            return None
        shift = self.seq_shift
        if not in_order:  # dropped packets that came after this one do not shift it
            shift -= sum(1 for dropped in self._dropped if _newer(dropped, sequence_number))
        if self._pic_shift and descriptor.picture_id is not None:
            template = self._rewrite_picture_id(template, payload_at, descriptor)
        self._maybe_disengage(sequence_number)
        return shift, template

    def _follow_target(self, descriptor: Vp8Descriptor) -> None:
        if self.target < self.current:
            self.current = self.target
        elif self.target > self.current:
            if descriptor.keyframe:
                self.current = self.target
            elif descriptor.layer_sync and descriptor.tid == self.current + 1:
                self.current = self.target if descriptor.tid >= self._top else descriptor.tid
            else:
                self.refused_switches += 1
        if descriptor.keyframe and self.current == ALL_LAYERS:
            # A keyframe starts over: its real picture id is a jump forward, which a decoder
            # takes like frames lost before a keyframe. Later frames need no rewriting.
            self._pic_shift = 0
            self._last_dropped_picture = None

    def _maybe_disengage(self, sequence_number: int) -> None:
        if self.current != ALL_LAYERS or self.target != ALL_LAYERS or self._pic_shift:
            return
        if not self._dropped or ((sequence_number - self._dropped[-1]) & 0xFFFF) > 512:
            self._dropped.clear()
            self.engaged = False

    def _rewrite_picture_id(
        self, template: bytes, payload_at: int, descriptor: Vp8Descriptor
    ) -> bytes:
        assert descriptor.picture_id is not None
        at = payload_at + descriptor.picture_id_at
        rewritten = bytearray(template)
        if rewritten[at] & 0x80:
            picture = (descriptor.picture_id - self._pic_shift) & 0x7FFF
            rewritten[at] = 0x80 | (picture >> 8)
            rewritten[at + 1] = picture & 0xFF
        else:
            rewritten[at] = (descriptor.picture_id - self._pic_shift) & 0x7F
        return bytes(rewritten)

    def input_sequence_number(self, shifted: int) -> int:
        """The inverse of :meth:`admit`'s rewrite: which incoming sequence number an outgoing one
        (with the forwarder's own offset already taken off) was, for NACKs of it."""
        later = 0
        candidate = (shifted + self.seq_shift) & 0xFFFF
        for dropped in reversed(self._dropped):
            if _newer(candidate, dropped):  # dropped before the packet: it did shift it
                break
            later += 1
            candidate = (shifted + self.seq_shift - later) & 0xFFFF
        return candidate
