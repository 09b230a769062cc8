"""Relay CPU of a room with one screen share, against the same room without.

A share is one more forwarded video to each of the others, so a 4-person room with one share
forwards 15 videos instead of 12: it should cost about 15/12 of the room without, and no more.
``PAIRS`` interleaved pairs (a fresh ``meetnow serve`` and one ``meetnow loadtest -n 4`` each,
``--screens 1`` for the share, the order alternating) so that a drift in the machine's load hits
both alike; the figure is the relay CPU per forwarded video with the share over that without.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .common import LoadRun, fmt, mean, measure_room, say, table

SIZE = 4
PAIRS = 3
QUICK_PAIRS = 1
DURATION = 15.0
SMOKE_DURATION = 3.0
TARGET_RATIO = 1.1
"""Per forwarded video, the room with a share may cost at most this much more than without."""


@dataclass
class ShareCostResult:
    size: int
    without: list[LoadRun] = field(default_factory=list)
    with_share: list[LoadRun] = field(default_factory=list)

    @staticmethod
    def streams(size: int, screens: int) -> int:
        return (size + screens) * (size - 1)

    def cpu(self, runs: list[LoadRun]) -> float | None:
        return mean([run.server_cpu_percent for run in runs]) if runs else None

    def per_stream(self, runs: list[LoadRun], screens: int) -> float | None:
        cpu = self.cpu(runs)
        return None if cpu is None else cpu / self.streams(self.size, screens)

    @property
    def ratio(self) -> float | None:
        """Relay CPU per forwarded video, with the share over without."""
        with_share, without = self.per_stream(self.with_share, 1), self.per_stream(self.without, 0)
        return None if not with_share or not without else with_share / without

    @property
    def all_held(self) -> bool:
        return all(run.held() for run in [*self.without, *self.with_share])


def measure(pairs: int, seconds: float) -> ShareCostResult:
    result = ShareCostResult(SIZE)
    for pair in range(pairs):
        order = (0, 1) if pair % 2 == 0 else (1, 0)
        for screens in order:
            run = measure_room(SIZE, seconds, extra_args=["--screens", str(screens)])
            (result.with_share if screens else result.without).append(run)
            say(
                f"  pair {pair + 1}, {'with' if screens else 'without'} a share: relay "
                f"{run.server_cpu_percent:.1f}% of a core for "
                f"{result.streams(SIZE, screens)} videos ({run.failure() or 'held'})"
            )
    say(describe(result))
    return result


def describe(result: ShareCostResult) -> str:
    return (
        f"  {result.size}-person room, relay CPU: without a share "
        f"{fmt(result.cpu(result.without), 1)}% ({fmt(result.per_stream(result.without, 0), 2)}% "
        f"per video), with one {fmt(result.cpu(result.with_share), 1)}% "
        f"({fmt(result.per_stream(result.with_share, 1), 2)}% per video): "
        f"{fmt(result.ratio, 2)}x per video (target <= {TARGET_RATIO:.1f}x)"
    )


def markdown(result: ShareCostResult) -> str:
    rows: list[list[object]] = []
    for label, runs, screens in (
        ("without a share", result.without, 0),
        ("with one screen share", result.with_share, 1),
    ):
        rows.append(
            [
                label,
                len(runs),
                result.streams(result.size, screens),
                fmt(result.cpu(runs), 1),
                fmt(result.per_stream(runs, screens), 3),
                "yes" if runs and all(run.held() for run in runs) else "**no**",
            ]
        )
    return (
        table(
            [
                f"{result.size}-person room",
                "runs",
                "forwarded videos",
                "relay CPU, % of a core (mean)",
                "per video",
                "held (every camera video >= 28 fps)",
            ],
            rows,
        )
        + f"\n\nPer forwarded video, the room with a share costs {fmt(result.ratio, 2)}x the room "
        f"without (target <= {TARGET_RATIO:.1f}x)."
    )
