"""``meetnow loadtest``: synthetic participants join a real room through the public protocol.

Each participant publishes 640x480 30 fps VP8 at about 1 Mbps and Opus audio, both encoded once
ahead of time with PyAV (no encoding while it runs), and subscribes to everyone else. What arrives is
counted per RTP packet, never decoded, so one load generator can stand in for many people.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import av
import numpy
from aiortc import MediaStreamTrack

from .client import ParticipantClient

__all__ = ["EncodedMedia", "LoadtestResult", "encode_media", "run_loadtest"]

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


def encode_media(
    width: int = 640, height: int = 480, seconds: float = 2.0, bitrate: int = 1_000_000
) -> EncodedMedia:
    """Encode a moving test pattern (with a band of noise, so it costs real bits) once."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.framerate = fractions.Fraction(VIDEO_FPS, 1)
    codec.time_base = fractions.Fraction(1, VIDEO_FPS)
    codec.bit_rate = bitrate
    codec.gop_size = 1_000_000  # one keyframe, at the start of the loop
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    rng = numpy.random.default_rng(7)
    noise = rng.integers(0, 255, (height, width, 3), dtype=numpy.uint8)
    base = numpy.zeros((height, width, 3), dtype=numpy.uint8)
    base[:, :, 0] = numpy.linspace(0, 255, width, dtype=numpy.uint8)[None, :]
    base[:, :, 2] = numpy.linspace(255, 0, height, dtype=numpy.uint8)[:, None]
    band = height // 6
    video: list[bytes] = []
    frames = int(seconds * VIDEO_FPS)
    for index in range(frames):
        image = base.copy()
        top = (index * 8) % (height - band)
        image[top : top + band] = numpy.roll(noise, index * 16, axis=1)[top : top + band]
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = index
        video.extend(bytes(packet) for packet in codec.encode(frame))
    video.extend(bytes(packet) for packet in codec.encode(None))

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
    return EncodedMedia(tuple(video), tuple(audio), bits / (len(video) / VIDEO_FPS))


class _EncodedTrack(MediaStreamTrack):
    """Plays a loop of encoded packets in real time; aiortc packetizes them (``pack()``)."""

    def __init__(self, packets: tuple[bytes, ...], interval: float, ticks: int, clock: int) -> None:
        super().__init__()
        self._packets = packets
        self._interval = interval
        self._ticks = ticks
        self._time_base = fractions.Fraction(1, clock)
        self._index = 0
        self._count = 0
        self._start: float | None = None

    def request_keyframe(self) -> None:
        """The loop's first frame is its keyframe: restart there."""
        self._index = 0

    async def recv(self) -> Any:
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self._count * self._interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        packet = av.Packet(self._packets[self._index])
        packet.pts = self._count * self._ticks
        packet.time_base = self._time_base
        self._index = (self._index + 1) % len(self._packets)
        self._count += 1
        return packet


class EncodedVideoTrack(_EncodedTrack):
    kind = "video"

    def __init__(self, media: EncodedMedia) -> None:
        super().__init__(media.video, 1 / VIDEO_FPS, VIDEO_CLOCK // VIDEO_FPS, VIDEO_CLOCK)


class EncodedAudioTrack(_EncodedTrack):
    kind = "audio"

    def __init__(self, media: EncodedMedia) -> None:
        super().__init__(media.audio, AUDIO_FRAME_SAMPLES / 48_000, AUDIO_FRAME_SAMPLES, 48_000)


@dataclass
class LoadtestResult:
    """Everything measured, per participant and in total."""

    participants: list[dict[str, Any]]
    """One entry per synthetic participant."""
    summary: dict[str, Any]
    """The totals (the top level of ``--json``)."""


def _percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def split_room_url(room_url: str) -> tuple[str, str]:
    """``https://host/r/ID`` -> (``https://host``, ``ID``)."""
    parts = urlsplit(room_url)
    segments = parts.path.rstrip("/").split("/")
    if parts.scheme not in ("http", "https") or len(segments) < 3 or segments[-2] != "r":
        raise ValueError(f"not a meetnow room link: {room_url!r}")
    prefix = "/".join(segments[:-2])
    return f"{parts.scheme}://{parts.netloc}{prefix}", segments[-1]


def _measure(
    clients: list[ParticipantClient], window: tuple[float, float], joined_at: dict[str, float]
) -> LoadtestResult:
    start, end = window
    seconds = max(end - start, 1e-6)
    rows: list[dict[str, Any]] = []
    fps_all: list[float] = []
    first_frame_ms: list[float] = []
    join_ms: list[float] = []
    freezes = 0
    video_received = audio_received = 0
    total_bits = 0.0
    lost = packets = 0
    ids = [c.participant_id for c in clients]
    for client in clients:
        join = (
            (client.connected_at - client.join_started_at) * 1000 if client.connected_at else None
        )
        if join is not None:
            join_ms.append(join)
        fps: list[float] = []
        bitrate = 0.0
        for other in ids:
            if other == client.participant_id or other is None:
                continue
            for kind in ("video", "audio"):
                stream = client.streams.get((other, kind))
                if stream is None or stream.first_frame_at is None:
                    continue
                if kind == "video":
                    video_received += 1
                    fps.append((stream.frames - stream.marked_frames) / seconds)
                    freezes += stream.freezes
                else:
                    audio_received += 1
                bitrate += (stream.bytes - stream.marked_bytes) * 8 / seconds
                lost += stream.lost
                packets += stream.packets
                begin = max(client.join_started_at, joined_at.get(other, 0.0))
                first_frame_ms.append((stream.first_frame_at - begin) * 1000)
        fps_all.extend(fps)
        total_bits += bitrate
        rows.append(
            {
                "name": client.name,
                "join_ms": join,
                "video_streams": len(fps),
                "video_fps_min": min(fps) if fps else 0.0,
                "video_fps_mean": statistics.fmean(fps) if fps else 0.0,
                "received_kbps": bitrate / 1000,
                "freezes": sum(s.freezes for s in client.streams.values()),
                "errors": len(client.errors),
            }
        )
    count = len(clients)
    summary: dict[str, Any] = {
        "participants": count,
        "duration_s": round(seconds, 2),
        "streams_expected": count * (count - 1) * 2,
        "streams_received": video_received + audio_received,
        "video_streams_expected": count * (count - 1),
        "video_streams_received": video_received,
        "video_fps_min": round(min(fps_all), 2) if fps_all else 0.0,
        "video_fps_mean": round(statistics.fmean(fps_all), 2) if fps_all else 0.0,
        "freezes": freezes,
        "join_ms_p50": _round(_percentile(join_ms, 0.5)),
        "join_ms_p95": _round(_percentile(join_ms, 0.95)),
        "first_frame_ms_p50": _round(_percentile(first_frame_ms, 0.5)),
        "first_frame_ms_p95": _round(_percentile(first_frame_ms, 0.95)),
        "received_mbps_total": round(total_bits / 1e6, 2),
        "loss_percent": round(100 * lost / max(1, lost + packets), 3),
        "errors": sum(len(c.errors) for c in clients),
    }
    return LoadtestResult(rows, summary)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


async def run_loadtest(
    room_url: str,
    participants: int,
    duration: float,
    *,
    progress: Callable[[str], None] | None = None,
    media: EncodedMedia | None = None,
    join_interval: float = 0.15,
) -> LoadtestResult:
    """Join ``participants`` synthetic people, hold the call ``duration`` seconds, measure."""
    base_url, room_id = split_room_url(room_url)
    media = media or encode_media()
    clients: list[ParticipantClient] = []
    joined_at: dict[str, float] = {}
    say = progress or (lambda _: None)
    try:
        for index in range(participants):
            client = ParticipantClient(
                base_url,
                room_id,
                name=f"load-{index + 1}",
                audio=EncodedAudioTrack(media),
                video=EncodedVideoTrack(media),
                decode=False,
                count_encrypted=True,
            )
            clients.append(client)
            await client.join()
            assert client.participant_id is not None
            joined_at[client.participant_id] = client.join_started_at
            say(f"joined {index + 1}/{participants}")
            await asyncio.sleep(join_interval)
        expected = participants * (participants - 1)
        # Warm-up: until every video stream has arrived (or 10 s), then measure a clean window.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _video_streams(clients) < expected:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        for client in clients:
            for stream in client.streams.values():
                stream.mark()  # warm-up frames and freezes do not count
        start = time.monotonic()
        while (now := time.monotonic()) < start + duration:
            await asyncio.sleep(min(1.0, start + duration - now))
            say(
                f"{now - start:4.0f}s  video streams {_video_streams(clients)}/{expected}"
                f"  freezes {sum(s.freezes for c in clients for s in c.streams.values())}"
            )
        return _measure(clients, (start, time.monotonic()), joined_at)
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()


def _video_streams(clients: list[ParticipantClient]) -> int:
    return sum(
        1 for c in clients for (_, kind), s in c.streams.items() if kind == "video" and s.frames
    )


def render_table(result: LoadtestResult) -> str:
    header = f"{'participant':<12} {'join ms':>8} {'streams':>7} {'fps min':>8} {'fps mean':>8} {'kbps in':>8} {'freezes':>7}"
    lines = [header, "-" * len(header)]
    for row in result.participants:
        join = f"{row['join_ms']:.0f}" if row["join_ms"] is not None else "-"
        lines.append(
            f"{row['name']:<12} {join:>8} {row['video_streams']:>7} {row['video_fps_min']:>8.1f}"
            f" {row['video_fps_mean']:>8.1f} {row['received_kbps']:>8.0f} {row['freezes']:>7}"
        )
    s = result.summary
    lines.append("-" * len(header))
    lines.append(
        f"{s['participants']} participants, {s['streams_received']}/{s['streams_expected']} streams, "
        f"video fps min {s['video_fps_min']} mean {s['video_fps_mean']}, {s['freezes']} freezes, "
        f"join p50 {s['join_ms_p50']} ms p95 {s['join_ms_p95']} ms, loss {s['loss_percent']}%"
    )
    return "\n".join(lines)


def main(room_url: str, participants: int, duration: float, as_json: bool) -> int:
    interactive = sys.stderr.isatty()

    def progress(line: str) -> None:
        if interactive:
            print(f"\r\x1b[K{line}", end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    try:
        split_room_url(room_url)
    except ValueError as error:
        print(f"meetnow loadtest: {error}", file=sys.stderr)
        return 2
    result = asyncio.run(run_loadtest(room_url, participants, duration, progress=progress))
    if interactive:
        print(file=sys.stderr)
    if as_json:
        print(json.dumps({**result.summary, "per_participant": result.participants}))
    else:
        print(render_table(result))
    ok = result.summary["streams_received"] == result.summary["streams_expected"]
    return 0 if ok else 1
