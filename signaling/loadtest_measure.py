"""What ``meetnow loadtest`` reports: every figure labelled with the window it covers.

Two windows: each join (join time, time to first frame: from a participant's ``join`` to its
connection, and to the first packet of each stream), and the measured window, which starts once
every expected video stream has arrived and lasts ``--duration`` seconds (fps, freezes, loss,
bitrate: counters reset at its start, freezes at its edges included).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from .client import ParticipantClient, ReceivedStream

__all__ = ["JOIN_FIGURES", "WINDOW_FIGURES", "WINDOW_START", "LoadtestResult", "measure"]

WINDOW_START = "after every expected video stream arrived (at most 10 s after the last join)"

WINDOW_FIGURES = (
    "video_fps_min",
    "video_fps_mean",
    "video_fps_max",
    "freezes",
    "freeze_seconds",
    "loss_percent",
    "received_mbps_total",
    "per_participant",
)
"""Summary keys measured over the measured window only."""

JOIN_FIGURES = (
    "join_ms_p50",
    "join_ms_p95",
    "first_frame_ms_p50",
    "first_frame_ms_p95",
    "video_first_frame_ms_p50",
    "video_first_frame_ms_p95",
)
"""Summary keys measured from each join (before the measured window)."""


@dataclass
class LoadtestResult:
    """Everything measured, per participant and in total."""

    participants: list[dict[str, Any]]
    """One entry per synthetic participant."""
    summary: dict[str, Any]
    """The totals (the top level of ``--json``)."""


@dataclass
class _Totals:
    """Sums over the streams of the room, or of one participant."""

    fps: list[float] = field(default_factory=list)
    """Each video stream's fps over the window."""
    freezes: int = 0
    freeze_seconds: float = 0.0
    bits: float = 0.0
    lost: int = 0
    packets: int = 0
    video_received: int = 0
    audio_received: int = 0

    def add(self, other: _Totals) -> None:
        self.fps.extend(other.fps)
        self.freezes += other.freezes
        self.freeze_seconds += other.freeze_seconds
        self.bits += other.bits
        self.lost += other.lost
        self.packets += other.packets
        self.video_received += other.video_received
        self.audio_received += other.audio_received

    @property
    def loss_percent(self) -> float:
        return round(100 * self.lost / max(1, self.lost + self.packets), 3)


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile, None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _account(
    totals: _Totals, stream: ReceivedStream | None, kind: str, window: tuple[float, float]
) -> None:
    """Add one expected stream's window figures; a video stream that never arrived is a freeze
    as long as the window."""
    start, end = window
    seconds = max(end - start, 1e-6)
    if stream is None or stream.first_frame_at is None:
        if kind == "video":
            totals.freezes += 1
            totals.freeze_seconds += seconds
        return
    if kind == "video":
        totals.video_received += 1
        totals.fps.append(stream.window_fps(seconds))
        freezes, frozen = stream.window_freezes(start, end)
        totals.freezes += freezes
        totals.freeze_seconds += frozen
    else:
        totals.audio_received += 1
    totals.bits += (stream.bytes - stream.marked_bytes) * 8 / seconds
    totals.lost += stream.lost
    totals.packets += stream.packets


def measure(
    clients: list[ParticipantClient],
    window: tuple[float, float],
    joined_at: dict[str, float],
    *,
    warmup_s: float,
    feedback: bool,
) -> LoadtestResult:
    """The figures of a finished run: ``window`` is (start, end) of the measured window."""
    seconds = max(window[1] - window[0], 1e-6)
    rows: list[dict[str, Any]] = []
    room = _Totals()
    first_frame_ms: list[float] = []
    video_first_frame_ms: list[float] = []
    join_ms: list[float] = []
    ids = [c.participant_id for c in clients if c.participant_id is not None]
    for client in clients:
        join = (
            (client.connected_at - client.join_started_at) * 1000 if client.connected_at else None
        )
        if join is not None:
            join_ms.append(join)
        mine = _Totals()
        for other in ids:
            if other == client.participant_id:
                continue
            for kind in ("video", "audio"):
                stream = client.streams.get((other, kind))
                _account(mine, stream, kind, window)
                if stream is not None and stream.first_frame_at is not None:
                    begin = max(client.join_started_at, joined_at.get(other, 0.0))
                    first_frame_ms.append((stream.first_frame_at - begin) * 1000)
                    if kind == "video":
                        video_first_frame_ms.append(first_frame_ms[-1])
        room.add(mine)
        rows.append(_row(client, join, mine))
    count = len(clients)
    summary: dict[str, Any] = {
        "participants": count,
        "duration_s": round(seconds, 2),
        "measured_window_s": round(seconds, 2),
        "window": {
            "seconds": round(seconds, 2),
            "start": WINDOW_START,
            "warmup_s": round(warmup_s, 2),
            "covers": list(WINDOW_FIGURES),
            "from_each_join": list(JOIN_FIGURES),
        },
        "streams_expected": count * (count - 1) * 2,
        "streams_received": room.video_received + room.audio_received,
        "video_streams_expected": count * (count - 1),
        "video_streams_received": room.video_received,
        "video_fps_min": round(min(room.fps), 2) if room.fps else 0.0,
        "video_fps_mean": round(statistics.fmean(room.fps), 2) if room.fps else 0.0,
        "video_fps_max": round(max(room.fps), 2) if room.fps else 0.0,
        "freezes": room.freezes,
        "freeze_seconds": round(room.freeze_seconds, 2),
        "join_ms_p50": _round(percentile(join_ms, 0.5)),
        "join_ms_p95": _round(percentile(join_ms, 0.95)),
        "first_frame_ms_p50": _round(percentile(first_frame_ms, 0.5)),
        "first_frame_ms_p95": _round(percentile(first_frame_ms, 0.95)),
        "video_first_frame_ms_p50": _round(percentile(video_first_frame_ms, 0.5)),
        "video_first_frame_ms_p95": _round(percentile(video_first_frame_ms, 0.95)),
        "received_mbps_total": round(room.bits / 1e6, 2),
        "loss_percent": room.loss_percent,
        "feedback": feedback,
        "errors": sum(len(c.errors) for c in clients),
    }
    return LoadtestResult(rows, summary)


def _row(client: ParticipantClient, join_ms: float | None, totals: _Totals) -> dict[str, Any]:
    fps = totals.fps
    return {
        "name": client.name,
        "join_ms": join_ms,
        "video_streams": len(fps),
        "video_fps_min": min(fps) if fps else 0.0,
        "video_fps_mean": statistics.fmean(fps) if fps else 0.0,
        "video_fps_max": max(fps) if fps else 0.0,
        "received_kbps": totals.bits / 1000,
        "freezes": totals.freezes,
        "freeze_seconds": round(totals.freeze_seconds, 2),
        "loss_percent": totals.loss_percent,
        "errors": len(client.errors),
    }
