"""Figures of the network benchmark, from what the pages recorded: pure functions, no I/O.

A video's frames are the page-clock times (ms) at which ``requestVideoFrameCallback`` saw new
frames presented, with how many each time (tests/support/page_hooks.js). A freeze is a gap of more
than ``FREEZE_MS`` between presented frames inside the window, the window's edges included: a
video that stops for good near the end, or has not started at its beginning, is frozen then too
(a freeze counted only when the next frame arrives would miss a stall at the end).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

FREEZE_MS = 500.0


@dataclass(frozen=True)
class VideoFigures:
    """One remote video, seen by one guest, over one window."""

    name: str
    fps: float
    freezes: int
    frozen_s: float
    longest_gap_s: float


def video_figures(
    name: str,
    times: Sequence[float],
    counts: Sequence[int],
    start: float,
    end: float,
) -> VideoFigures:
    """Frame rate and freezes of one video between ``start`` and ``end`` (page clock, ms)."""
    if end <= start:
        raise ValueError("the window must end after it starts")
    inside = [(at, count) for at, count in zip(times, counts, strict=True) if start <= at <= end]
    frames = sum(count for _, count in inside)
    edges = [start, *(at for at, _ in inside), end]
    gaps = [later - earlier for earlier, later in itertools.pairwise(edges)]
    freezes = [gap for gap in gaps if gap > FREEZE_MS]
    return VideoFigures(
        name,
        fps=frames / ((end - start) / 1000),
        freezes=len(freezes),
        frozen_s=sum(freezes) / 1000,
        longest_gap_s=max(gaps) / 1000,
    )


MISSING = "(never arrived)"
"""The name of a remote video a guest should have had and never got a tile for."""


def guest_videos(
    tiles: Sequence[tuple[str, Sequence[float], Sequence[int]]],
    expected: int,
    start: float,
    end: float,
) -> list[VideoFigures]:
    """One guest's remote videos over the window: each tile's (name, frame times, counts), and
    for every video it should have had but never got a tile for, a video frozen the whole window
    (left out, a guest who never entered the call would flatter the figures)."""
    videos = [video_figures(name, times, counts, start, end) for name, times, counts in tiles]
    videos += [video_figures(MISSING, [], [], start, end)] * max(0, expected - len(tiles))
    return videos


@dataclass
class PathRun:
    """One condition on one path (through meetnow, or peer to peer): every remote video."""

    condition: str
    path: str
    window_s: float = 0.0
    videos: list[VideoFigures] | None = None
    video_kbps: float | None = None
    """Mean received video bitrate per remote video."""
    audio_concealed_percent: float | None = None
    note: str = ""
    """Why it has no figures, or what went wrong on the way."""

    @property
    def measured(self) -> bool:
        return bool(self.videos) and self.window_s > 0

    @property
    def freezes_per_minute(self) -> float | None:
        """Freezes per minute per video."""
        if not self.measured or self.videos is None:
            return None
        return sum(v.freezes for v in self.videos) / len(self.videos) / (self.window_s / 60)

    @property
    def fps_min(self) -> float | None:
        return min(v.fps for v in self.videos) if self.measured and self.videos else None

    @property
    def fps_mean(self) -> float | None:
        if not self.measured or not self.videos:
            return None
        return sum(v.fps for v in self.videos) / len(self.videos)

    @property
    def longest_gap_s(self) -> float | None:
        return max(v.longest_gap_s for v in self.videos) if self.measured and self.videos else None

    @property
    def frozen_s(self) -> float | None:
        return sum(v.frozen_s for v in self.videos) if self.measured and self.videos else None


def freezes_target(relay: PathRun, direct: PathRun, margin: float = 0.1) -> bool | None:
    """The issue's loss target: freezes per minute per video no more than peer to peer + 0.1
    (None: one of them was not measured)."""
    ours, theirs = relay.freezes_per_minute, direct.freezes_per_minute
    if ours is None or theirs is None:
        return None
    return ours <= theirs + margin


def capped_target(relay: PathRun, min_fps: float = 10.0, max_gap_s: float = 2.0) -> bool | None:
    """The issue's capped-downlink target: every video >= 10 fps, no freeze over 2 s."""
    if relay.fps_min is None or relay.longest_gap_s is None:
        return None
    return relay.fps_min >= min_fps and relay.longest_gap_s <= max_gap_s


def concealed_percent(concealed: float, total: float) -> float | None:
    """Share of received audio samples that the receiver had to make up."""
    return 100 * concealed / total if total > 0 else None
