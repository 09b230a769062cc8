"""Relay density: how many forwarded 640x480 30 fps video streams one relay process holds.

For each room size a fresh ``meetnow serve`` (one process, so one core) gets one room and
``meetnow loadtest`` (another process) fills it with N synthetic participants that each publish
pre-encoded VP8 (~1 Mbps) and Opus and receive everyone else, answering with the RTCP a browser
sends. The server's CPU time is read from /proc over the loadtest's measured window. Sizes grow
until one fails to hold 30 fps by the one rule of ``benchmarks.common.room_failures`` (every
stream >= 28 fps, no freeze, every stream arrived, loss <= 1%); capacity is stated only for sizes
that held.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .common import (
    HELD_MIN_FPS,
    NOISY_PERCENT,
    LoadRun,
    fmt,
    measure_room,
    say,
    table,
    wait_for_quiet,
)

SIZES = (2, 4, 8, 12, 16, 20, 24, 28, 32)
QUICK_SIZES = (2, 4)
DURATION = 15.0
QUICK_DURATION = 5.0
MIN_FPS = HELD_MIN_FPS
RETRY_WAIT = 120.0
"""Longest wait for a quiet machine before measuring a size again."""


@dataclass
class DensityRow:
    run: LoadRun

    @property
    def size(self) -> int:
        return self.run.participants

    @property
    def streams(self) -> int:
        return self.run.video_streams

    @property
    def cpu_per_stream(self) -> float:
        """Server CPU per forwarded video stream (with its audio), % of one core."""
        return self.run.server_cpu_percent / self.streams

    @property
    def streams_per_core(self) -> float:
        """100 / CPU per stream, whether or not the room held (see :attr:`capacity`)."""
        return 100 / self.cpu_per_stream if self.cpu_per_stream > 0 else 0.0

    @property
    def capacity(self) -> float | None:
        """Implied streams per core, stated only for a room that held: a failed size's CPU
        per stream is the cost of not delivering, not a capacity."""
        return self.streams_per_core if self.held else None

    @property
    def held(self) -> bool:
        return self.run.held(MIN_FPS)


def measure(
    sizes: Sequence[int], duration: float, module: str | None = None, label: str = "relay"
) -> list[DensityRow]:
    """Measure each size on a fresh server; stop after the first size that does not hold."""
    rows: list[DensityRow] = []
    for size in sizes:
        run = measure_room(size, duration, module=module)
        if not run.held(MIN_FPS) and run.other_cpu_percent > NOISY_PERCENT:
            say(
                f"  {label} N={size} failed while other processes used "
                f"{run.other_cpu_percent:.0f}% of a core: once more on a quieter machine"
            )
            wait_for_quiet(RETRY_WAIT)
            run = measure_room(size, duration, module=module)
        row = DensityRow(run)
        rows.append(row)
        say(line(label, row))
        if not row.held:
            say(f"  {label}: {size} participants did not hold: {run.failure(MIN_FPS)}")
            break
    return rows


def line(label: str, row: DensityRow) -> str:
    s = row.run.summary or {}
    return (
        f"  {label} N={row.size:>2}: {row.streams:>3} video streams, server CPU "
        f"{row.run.server_cpu_percent:5.1f}% ({row.cpu_per_stream:.2f}%/stream, "
        f"{fmt(row.capacity, 0)} streams/core), generator CPU "
        f"{row.run.generator_cpu_percent:5.1f}%; over the {s.get('measured_window_s', '-')} s "
        f"window: fps per stream min/mean {s.get('video_fps_min', '-')}/"
        f"{s.get('video_fps_mean', '-')}, freezes {s.get('freezes', '-')}, loss "
        f"{s.get('loss_percent', '-')}%, UDP drops relay/generator {row.run.server_udp_drops}/"
        f"{row.run.generator_udp_drops} -> {'held' if row.held else 'FAILED'}"
    )


def largest_held(rows: Sequence[DensityRow]) -> DensityRow | None:
    held = [row for row in rows if row.held]
    return max(held, key=lambda row: row.size) if held else None


def markdown(rows: Sequence[DensityRow]) -> str:
    header = [
        "participants",
        "video streams N(N-1)",
        "relay CPU (% of a core)",
        "CPU per stream (%)",
        "implied streams/core (held sizes only)",
        "generator CPU (%)",
        "rest of machine CPU (%)",
        "fps per stream min / mean (window)",
        "freezes (window, trailing included)",
        "loss % (window)",
        "UDP drops in window: relay / generator",
        "video first frame p50 / p95 (ms, from join)",
        "30 fps held",
    ]
    body = []
    for row in rows:
        s = row.run.summary or {}
        body.append(
            [
                row.size,
                row.streams,
                fmt(row.run.server_cpu_percent),
                fmt(row.cpu_per_stream, 2),
                fmt(row.capacity, 0),
                fmt(row.run.generator_cpu_percent),
                fmt(row.run.other_cpu_percent),
                f"{s.get('video_fps_min', '-')} / {s.get('video_fps_mean', '-')}",
                s.get("freezes", "-"),
                s.get("loss_percent", "-"),
                f"{row.run.server_udp_drops} / {row.run.generator_udp_drops}",
                f"{s.get('video_first_frame_ms_p50', '-')} / "
                f"{s.get('video_first_frame_ms_p95', '-')}",
                "yes" if row.held else f"**no**: {row.run.failure(MIN_FPS)}",
            ]
        )
    return table(header, body)
