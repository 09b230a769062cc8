"""The baseline for the relay's cost: aiortc's MediaRelay design (decode each publisher once, encode
once per subscriber), run by ``benchmarks/mediarelay_server.py`` inside the real server, measured
exactly like the density runs (fresh server, ``meetnow loadtest``, CPU from /proc).

The ratio is MediaRelay CPU per forwarded stream / packet-forwarding CPU per forwarded stream, at
the room sizes where both held 30 fps; packet-forwarding figures come from this run's density
section, or are measured here for sizes it did not cover.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import density
from .common import fmt, measure_room, say, table

MODULE = "benchmarks.mediarelay_server"
SIZES = (2, 3, 4, 5, 6)
QUICK_SIZES = (2, 3)
TARGET_RATIO = 40.0


@dataclass
class Comparison:
    size: int
    mediarelay: density.DensityRow
    forwarding: density.DensityRow

    @property
    def ratio(self) -> float:
        return self.mediarelay.cpu_per_stream / self.forwarding.cpu_per_stream


@dataclass
class BaselineResult:
    mediarelay: list[density.DensityRow]
    comparisons: list[Comparison]
    forwarding_largest: density.DensityRow | None

    @property
    def headline(self) -> Comparison | None:
        """The comparison at the largest room size where both held (fixed costs weigh least)."""
        return self.comparisons[-1] if self.comparisons else None

    @property
    def capacity_ratio(self) -> float | None:
        """Implied streams per core at each design's largest room held at 30 fps."""
        mediarelay = density.largest_held(self.mediarelay)
        if mediarelay is None or self.forwarding_largest is None:
            return None
        return self.forwarding_largest.streams_per_core / mediarelay.streams_per_core


def measure(
    sizes: Sequence[int], duration: float, forwarding: Sequence[density.DensityRow]
) -> BaselineResult:
    rows = density.measure(sizes, duration, module=MODULE, label="MediaRelay")
    known = {row.size: row for row in forwarding if row.held}
    comparisons = []
    for row in rows:
        if not row.held:
            continue
        other = known.get(row.size)
        if other is None:
            other = density.DensityRow(measure_room(row.size, duration))
            say(density.line("relay", other))
            if not other.held:
                continue
        comparisons.append(Comparison(row.size, row, other))
        say(
            f"  N={row.size}: MediaRelay {row.cpu_per_stream:.2f}%/stream vs packet forwarding "
            f"{other.cpu_per_stream:.3f}%/stream -> {comparisons[-1].ratio:.1f}x"
        )
    held = [row for row in forwarding if row.held]
    largest = max(held, key=lambda row: row.size) if held else None
    return BaselineResult(rows, comparisons, largest)


def markdown(result: BaselineResult) -> str:
    rows: list[list[object]] = []
    for row in result.mediarelay:
        s = row.run.summary or {}
        rows.append(
            [
                row.size,
                row.streams,
                fmt(row.run.server_cpu_percent),
                fmt(row.cpu_per_stream, 2),
                fmt(row.streams_per_core, 1) if row.held else "-",  # capacity only where held
                fmt(row.run.generator_cpu_percent),
                f"{s.get('video_fps_min', '-')} / {s.get('video_fps_mean', '-')}",
                s.get("freezes", "-"),
                "yes" if row.held else f"**no**: {row.run.failure(density.MIN_FPS)}",
            ]
        )
    first = table(
        [
            "participants",
            "video streams",
            "server CPU (% of a core)",
            "CPU per stream (%)",
            "implied streams/core",
            "generator CPU (%)",
            "fps min / mean",
            "freezes",
            "30 fps held",
        ],
        rows,
    )
    second = table(
        [
            "participants",
            "MediaRelay CPU/stream (%)",
            "packet forwarding CPU/stream (%)",
            "ratio (MediaRelay / packet forwarding)",
            f"target >= {TARGET_RATIO:.0f}x",
        ],
        [
            [
                c.size,
                fmt(c.mediarelay.cpu_per_stream, 2),
                fmt(c.forwarding.cpu_per_stream, 3),
                f"{c.ratio:.1f}x",
                "met" if c.ratio >= TARGET_RATIO else "**not met**",
            ]
            for c in result.comparisons
        ],
    )
    return first + "\n\n" + second
