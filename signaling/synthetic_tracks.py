"""Raw test media for aiortc participants: a moving pattern and a tone, encoded by aiortc itself
(so its sender fills in the audio level of every packet)."""

from __future__ import annotations

import asyncio
import fractions
import time

import av
import numpy
from aiortc import MediaStreamTrack

__all__ = ["PatternVideoTrack", "ToneAudioTrack"]


class PatternVideoTrack(MediaStreamTrack):
    """A moving test pattern, so the video encoder has real work and decoded frames can be checked."""

    kind = "video"

    def __init__(self, width: int = 320, height: int = 240, fps: int = 30) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self._count = 0
        self._start: float | None = None
        base = numpy.zeros((height, width, 3), dtype=numpy.uint8)
        base[:, :, 0] = numpy.linspace(0, 255, width, dtype=numpy.uint8)[None, :]
        base[:, :, 1] = numpy.linspace(0, 255, height, dtype=numpy.uint8)[:, None]
        self._base = base

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._count / self.fps
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        image = numpy.roll(self._base, self._count * 4, axis=1)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = self._count * (90000 // self.fps)
        frame.time_base = fractions.Fraction(1, 90000)
        self._count += 1
        return frame


class ToneAudioTrack(MediaStreamTrack):
    """A 440 Hz tone in 20 ms frames of 48 kHz mono. aiortc encodes it and writes each packet's
    RFC 6464 audio level from the samples: the default amplitude is about -15 dBov (speech
    level to the relay's speaker detection), ``amplitude=0`` is silence (level 127)."""

    kind = "audio"

    def __init__(self, amplitude: int = 8000) -> None:
        super().__init__()
        self._count = 0
        self._start: float | None = None
        samples = numpy.arange(960)
        wave = numpy.sin(2 * numpy.pi * 440 * samples / 48000) * amplitude
        self._period = wave.astype(numpy.int16)

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._count * 0.02
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        frame = av.AudioFrame.from_ndarray(self._period.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self._count * 960
        frame.time_base = fractions.Fraction(1, 48000)
        self._count += 1
        return frame
