"""``meetnow loadtest``: synthetic participants join a real room through the public protocol.

Each participant publishes 640x480 30 fps VP8 at about 1 Mbps and Opus audio, both encoded once
ahead of time with PyAV (no encoding while it runs, :mod:`signaling.synthetic_media`), and
subscribes to everyone else. What arrives is counted per RTP packet, never decoded, so one load
generator can stand in for many people; each receiver still answers with the RTCP a browser sends
(receiver reports, REMB, NACK, PLI) unless ``feedback`` is off. ``layers=3`` publishes VP8 with
temporal layers (L1T3, as browsers do) so the relay can drop layers for a slow subscriber.
``impairment`` puts each participant's datagrams, both directions (the rate cap possibly one),
through a bad network of its own (:mod:`signaling.impairment`). The figures and their windows:
:mod:`signaling.loadtest_measure`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from aiortc import MediaStreamTrack

from .client import ParticipantClient
from .impairment import Impairment
from .loadtest_measure import LoadtestResult, measure
from .synthetic_media import EncodedAudioTrack, EncodedMedia, EncodedVideoTrack, encode_media

__all__ = [
    "EncodedAudioTrack",
    "EncodedMedia",
    "EncodedVideoTrack",
    "Impairment",
    "LoadtestResult",
    "encode_media",
    "run_loadtest",
    "split_room_url",
]

WARMUP_LIMIT_SECONDS = 10.0
"""Longest wait, after the last join, for every video stream to arrive before measuring."""

TrackMaker = Callable[[int, EncodedMedia], tuple[MediaStreamTrack, MediaStreamTrack]]
"""(participant index, media) -> (audio, video) tracks that participant publishes."""


def default_tracks(index: int, media: EncodedMedia) -> tuple[MediaStreamTrack, MediaStreamTrack]:
    """The pre-encoded loop, paced by the clock."""
    return EncodedAudioTrack(media), EncodedVideoTrack(media)


def split_room_url(room_url: str) -> tuple[str, str]:
    """``https://host/r/ID`` -> (``https://host``, ``ID``)."""
    parts = urlsplit(room_url)
    segments = parts.path.rstrip("/").split("/")
    if parts.scheme not in ("http", "https") or len(segments) < 3 or segments[-2] != "r":
        raise ValueError(f"not a meetnow room link: {room_url!r}")
    prefix = "/".join(segments[:-2])
    return f"{parts.scheme}://{parts.netloc}{prefix}", segments[-1]


async def run_loadtest(
    room_url: str,
    participants: int,
    duration: float,
    *,
    progress: Callable[[str], None] | None = None,
    media: EncodedMedia | None = None,
    join_interval: float = 0.15,
    feedback: bool = True,
    tracks: TrackMaker = default_tracks,
    impairment: Impairment | None = None,
    participant_impairments: Mapping[int, Impairment] | None = None,
    layers: int = 1,
    screens: int = 0,
) -> LoadtestResult:
    """Join ``participants`` synthetic people, wait until every video stream arrived, then
    measure ``duration`` seconds. ``feedback=False``: receivers send no RTCP about what they
    receive (a lighter load than browsers give, for comparison). ``impairment``: the network
    each participant's datagrams cross, both ways (seeded per participant);
    ``participant_impairments``: a network of its own for some participants (by index from 0),
    instead of ``impairment`` (one subscriber on a slow link while the others are not).
    ``layers``: temporal layers of the video encoded when no ``media`` is given. ``screens``: that
    many participants (the first ones) also share a screen (the same pre-encoded loop) once
    everyone has joined: one more forwarded video to each of the others."""
    base_url, room_id = split_room_url(room_url)
    media = media or encode_media(layers=layers)
    clients: list[ParticipantClient] = []
    joined_at: dict[str, float] = {}
    say = progress or (lambda _: None)
    try:
        for index in range(participants):
            audio, video = tracks(index, media)
            client = ParticipantClient(
                base_url,
                room_id,
                name=f"load-{index + 1}",
                audio=audio,
                video=video,
                decode=False,
                count_encrypted=True,
                feedback=feedback,
                impairment=(participant_impairments or {}).get(index, impairment),
                impairment_stream=index,
            )
            clients.append(client)
            await client.join()
            assert client.participant_id is not None
            joined_at[client.participant_id] = client.join_started_at
            say(f"joined {index + 1}/{participants}")
            await asyncio.sleep(join_interval)
        for client in clients[:screens]:
            client.screen = tracks(participants, media)[1]
            await client.share_screen()
        expected = (participants + min(screens, participants)) * (participants - 1)
        last_join = time.monotonic()
        deadline = last_join + WARMUP_LIMIT_SECONDS
        while time.monotonic() < deadline and _video_streams(clients) < expected:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        # The measured window starts here: every counter restarts (warm-up frames, loss and
        # freezes do not count).
        start = time.monotonic()
        for client in clients:
            for stream in client.streams.values():
                stream.mark(start)
        while (now := time.monotonic()) < start + duration:
            await asyncio.sleep(min(1.0, start + duration - now))
            say(
                f"{time.monotonic() - start:4.0f}s  video streams {_video_streams(clients)}/"
                f"{expected}  freezes {sum(s.freezes for c in clients for s in c.streams.values())}"
            )
        end = time.monotonic()
        result = measure(
            clients, (start, end), joined_at, warmup_s=start - last_join, feedback=feedback
        )
        result.summary["impairment"] = _impairment_summary(impairment, clients)
        result.summary["video_temporal_layers"] = (
            1 if media.temporal is None else media.temporal.layers
        )
        for kind in ("video", "audio"):
            result.summary[f"{kind}_loss_percent"] = _loss_percent(clients, kind)
        if screens:
            shared = [s for c in clients for (_, k), s in c.streams.items() if k == "screen"]
            result.summary["screen_streams_expected"] = expected - participants * (participants - 1)
            result.summary["screen_streams_received"] = len(shared)
            result.summary["screen_fps_min"] = min(
                (s.window_fps(end - start) for s in shared), default=0.0
            )
        return result
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()


def _impairment_summary(
    impairment: Impairment | None, clients: list[ParticipantClient]
) -> dict[str, object] | None:
    """The network asked for, and what it did over the whole run (joins included)."""
    if impairment is None or not impairment.active:
        return None
    links = [link for client in clients if client.links for link in client.links]
    return {
        "loss_percent": impairment.loss_percent,
        "delay_ms": impairment.delay_ms,
        "jitter_ms": impairment.jitter_ms,
        "rate_kbps": impairment.rate_kbps,
        "rate_direction": impairment.rate_direction,
        "seed": impairment.seed,
        "datagrams": sum(link.sent for link in links),
        "dropped_at_random": sum(link.lost for link in links),
        "dropped_by_rate_cap": sum(link.overflowed for link in links),
    }


def _loss_percent(clients: list[ParticipantClient], kind: str) -> float:
    """Packets of one kind still missing at the end of the measured window (a retransmission
    fills its gap), in percent: video is NACKed and retransmitted, audio is not."""
    streams = [s for c in clients for (_, k), s in c.streams.items() if k == kind]
    lost = sum(s.lost for s in streams)
    return round(100 * lost / max(1, lost + sum(s.packets for s in streams)), 3)


def _video_streams(clients: list[ParticipantClient]) -> int:
    return sum(
        1
        for c in clients
        for (_, kind), s in c.streams.items()
        if kind in ("video", "screen") and s.frames
    )


def render_table(result: LoadtestResult) -> str:
    s = result.summary
    window = f"{s['measured_window_s']:.1f} s window"
    header = (
        f"{'participant':<12} {'join ms':>8} {'streams':>7} {'fps min':>8} {'fps mean':>8}"
        f" {'kbps in':>8} {'freezes':>7} {'loss %':>7}"
    )
    lines = [f"per participant, over the {window} that starts {s['window']['start']}:", header]
    lines.append("-" * len(header))
    for row in result.participants:
        join = f"{row['join_ms']:.0f}" if row["join_ms"] is not None else "-"
        lines.append(
            f"{row['name']:<12} {join:>8} {row['video_streams']:>7} {row['video_fps_min']:>8.1f}"
            f" {row['video_fps_mean']:>8.1f} {row['received_kbps']:>8.0f} {row['freezes']:>7}"
            f" {row['loss_percent']:>7.2f}"
        )
    lines.append("-" * len(header))
    lines.append(
        f"{s['participants']} participants, {s['streams_received']}/{s['streams_expected']} "
        f"streams; over the {window}: video fps per stream min {s['video_fps_min']} mean "
        f"{s['video_fps_mean']} max {s['video_fps_max']}, {s['freezes']} freezes "
        f"({s['freeze_seconds']} s), loss {s['loss_percent']}% (video "
        f"{s.get('video_loss_percent')}%, audio {s.get('audio_loss_percent')}%)"
    )
    network = s.get("impairment")
    if network:
        rate = "no rate cap"
        if network["rate_kbps"]:
            where = network.get("rate_direction", "both")
            rate = f"{network['rate_kbps']:g} kbit/s" + (
                "" if where == "both" else f" {where} only"
            )
        lines.append(
            f"network, each participant both ways: {network['loss_percent']:g}% loss, "
            f"{network['delay_ms']:g} +- {network['jitter_ms']:g} ms, {rate}; "
            f"dropped {network['dropped_at_random']} at random and "
            f"{network['dropped_by_rate_cap']} by the cap of {network['datagrams']} datagrams"
        )
    lines.append(
        f"from each join: join p50 {s['join_ms_p50']} ms p95 {s['join_ms_p95']} ms, first video "
        f"frame p50 {s['video_first_frame_ms_p50']} ms p95 {s['video_first_frame_ms_p95']} ms"
        + ("" if s["feedback"] else "; receivers sent no RTCP feedback (--no-feedback)")
    )
    return "\n".join(lines)


def main(
    room_url: str,
    participants: int,
    duration: float,
    as_json: bool,
    feedback: bool = True,
    impairment: Impairment | None = None,
    layers: int = 1,
    screens: int = 0,
) -> int:
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
    result = asyncio.run(
        run_loadtest(
            room_url,
            participants,
            duration,
            progress=progress,
            feedback=feedback,
            impairment=impairment,
            layers=layers,
            screens=screens,
        )
    )
    if interactive:
        print(file=sys.stderr)
    if as_json:
        print(json.dumps({**result.summary, "per_participant": result.participants}))
    else:
        print(render_table(result))
    ok = result.summary["streams_received"] == result.summary["streams_expected"]
    return 0 if ok else 1
