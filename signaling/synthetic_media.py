"""The load generator's media: a loop of VP8 and Opus encoded once ahead of time with PyAV, played
by tracks that hand aiortc encoded packets (it only packetizes them), paced by the wall clock.
Video may have temporal layers as browsers send them (``layers=3``: L1T3), packetized then by
:class:`~signaling.synthetic_layers.LayeredVp8Packetizer` instead of aiortc.
"""

from __future__ import annotations

import asyncio
import fractions
import itertools
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import av
import numpy
from aiortc import MediaStreamTrack

from .synthetic_layers import LayeredVp8Packetizer, TemporalPattern, pattern_for

__all__ = [
    "AUDIO_FRAME_SAMPLES",
    "VIDEO_CLOCK",
    "VIDEO_FPS",
    "EncodedAudioTrack",
    "EncodedMedia",
    "EncodedVideoTrack",
    "encode_media",
    "encode_vp8",
]

VIDEO_FPS = 30
VIDEO_CLOCK = 90_000
AUDIO_FRAME_SAMPLES = 960  # 20 ms at 48 kHz


@dataclass(frozen=True)
class EncodedMedia:
    """A loop of encoded media shared by every synthetic participant."""

    video: tuple[bytes, ...]
    """VP8 frames; the first is a keyframe, and so the loop restarts on one."""
    audio: tuple[bytes, ...]
    """Opus packets of 20 ms."""
    video_bitrate: float
    """Average bits per second of the video loop."""
    temporal: TemporalPattern | None = None
    """The video's temporal layering (frame ``i`` has layer ``layer_ids[i % period]``), None
    for a single layer."""

    def layer_of(self, index: int) -> int:
        """Temporal layer id of video frame ``index`` (0 without layers)."""
        if self.temporal is None:
            return 0
        return self.temporal.layer_ids[index % len(self.temporal.layer_ids)]


def encode_vp8(
    images: Iterable[numpy.ndarray], bitrate: int, temporal: TemporalPattern | None = None
) -> list[bytes]:
    """Encode RGB pictures (``height x width x 3``) as VP8 at 30 fps, one keyframe first, one
    encoded frame out per picture in; with ``temporal``, in its layering."""
    pictures = iter(images)
    first = next(pictures)
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = first.shape[1], first.shape[0], "yuv420p"
    codec.framerate = fractions.Fraction(VIDEO_FPS, 1)
    codec.time_base = fractions.Fraction(1, VIDEO_FPS)
    codec.bit_rate = bitrate
    codec.gop_size = 1_000_000  # one keyframe, at the start of the loop
    options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    if temporal is not None:
        options.update(temporal.codec_options(bitrate))
    codec.options = options
    video: list[bytes] = []
    count = 0
    for index, image in enumerate(itertools.chain((first,), pictures)):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = index
        video.extend(bytes(packet) for packet in codec.encode(frame))
        count += 1
    video.extend(bytes(packet) for packet in codec.encode(None))
    if temporal is not None and len(video) != count:  # one out per picture in: layer ids line up
        raise RuntimeError(f"libvpx returned {len(video)} frames for {count}")
    return video


def encode_media(
    width: int = 640,
    height: int = 480,
    seconds: float = 2.0,
    bitrate: int = 1_000_000,
    layers: int = 1,
) -> EncodedMedia:
    """Encode a moving test pattern (with a band of noise, so it costs real bits) once.
    ``layers``: VP8 temporal layers (1, 2 or 3: L1T2 and L1T3 as browsers send them); the loop
    then holds whole periods of the pattern, so it restarts on layer 0."""
    temporal = pattern_for(layers)
    rng = numpy.random.default_rng(7)
    noise = rng.integers(0, 255, (height, width, 3), dtype=numpy.uint8)
    base = numpy.zeros((height, width, 3), dtype=numpy.uint8)
    base[:, :, 0] = numpy.linspace(0, 255, width, dtype=numpy.uint8)[None, :]
    base[:, :, 2] = numpy.linspace(255, 0, height, dtype=numpy.uint8)[:, None]
    band = height // 6
    frames = int(seconds * VIDEO_FPS)
    if temporal is not None:
        period = len(temporal.layer_ids)
        frames = max(period, frames - frames % period)

    def picture(index: int) -> numpy.ndarray:
        image = base.copy()
        top = (index * 8) % (height - band)
        image[top : top + band] = numpy.roll(noise, index * 16, axis=1)[top : top + band]
        return image

    video = encode_vp8((picture(index) for index in range(frames)), bitrate, temporal)

    opus = av.CodecContext.create("libopus", "w")
    opus.sample_rate, opus.layout, opus.format, opus.bit_rate = 48_000, "mono", "s16", 32_000
    tone = (
        numpy.sin(2 * numpy.pi * 440 * numpy.arange(AUDIO_FRAME_SAMPLES) / 48_000) * 8_000
    ).astype(numpy.int16)
    audio: list[bytes] = []
    for index in range(50):
        chunk = av.AudioFrame.from_ndarray(tone.reshape(1, -1), format="s16", layout="mono")
        chunk.sample_rate = 48_000
        chunk.pts = index * AUDIO_FRAME_SAMPLES
        audio.extend(bytes(packet) for packet in opus.encode(chunk))
    bits = sum(len(frame) for frame in video) * 8
    return EncodedMedia(
        tuple(video), tuple(audio), bits / (len(video) / VIDEO_FPS), temporal=temporal
    )


class _EncodedTrack(MediaStreamTrack):
    """Plays a loop of encoded packets in real time; aiortc packetizes them (``pack()``).

    Frame ``slot`` is due at ``epoch + slot * interval`` and carries ``slot * ticks`` as its
    timestamp, so RTP timestamps follow the wall clock. A recv more than one interval late
    (a busy event loop) skips the slots it missed instead of sending them back to back: a
    receiver never sees the frame rate rise above the nominal one to drain a backlog."""

    def __init__(self, packets: tuple[bytes, ...], interval: float, ticks: int, clock: int) -> None:
        super().__init__()
        self._packets = packets
        self._interval = interval
        self._ticks = ticks
        self._time_base = fractions.Fraction(1, clock)
        self._index = 0
        self._slot = 0
        self._epoch: float | None = None
        self.sent = 0
        """Frames handed to the sender so far."""

    def request_keyframe(self) -> None:
        """The loop's first frame is its keyframe: restart there."""
        self._index = 0

    async def recv(self) -> Any:
        now = time.monotonic()
        if self._epoch is None:
            self._epoch = now
        due = self._epoch + self._slot * self._interval
        if now - due > self._interval:
            # Drop the backlog: this frame takes the latest slot already due.
            self._slot = math.floor((now - self._epoch) / self._interval)
        elif due > now:
            await asyncio.sleep(due - now)
        packet = av.Packet(self._packets[self._index])
        packet.pts = self._slot * self._ticks
        packet.time_base = self._time_base
        packet.opaque = self._index  # which frame of the loop (a layered packetizer reads it)
        self.sent += 1
        self._index = (self._index + 1) % len(self._packets)
        self._slot += 1
        return packet


class EncodedVideoTrack(_EncodedTrack):
    kind = "video"

    def __init__(self, media: EncodedMedia) -> None:
        super().__init__(media.video, 1 / VIDEO_FPS, VIDEO_CLOCK // VIDEO_FPS, VIDEO_CLOCK)
        self.packetizer: LayeredVp8Packetizer | None = None
        """For layered media: what the sender must packetize with (aiortc's ``pack()`` writes
        no temporal layer ids); the participant installs it on its sender."""
        if media.temporal is not None:
            self.packetizer = LayeredVp8Packetizer(media.temporal)


class EncodedAudioTrack(_EncodedTrack):
    kind = "audio"

    def __init__(self, media: EncodedMedia) -> None:
        super().__init__(media.audio, AUDIO_FRAME_SAMPLES / 48_000, AUDIO_FRAME_SAMPLES, 48_000)
