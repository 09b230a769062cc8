"""Server memory per participant: RSS (VmRSS, all server processes) with the room created and empty,
then with N loadtest participants connected (read at the end of the loadtest's measured window).

The density runs already hold both readings for each size (fresh server each), so the full suite
reuses them; run alone, this section runs its own shorter loadtests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .common import LoadRun, fmt, measure_room, say, table

SIZES = (8, 16)
QUICK_SIZES = (4,)
DURATION = 5.0


@dataclass
class MemoryRow:
    run: LoadRun
    source: str

    @property
    def size(self) -> int:
        return self.run.participants

    @property
    def per_participant_mib(self) -> float:
        return (self.run.server_rss_during_mib - self.run.server_rss_before_mib) / self.size


def measure(sizes: Sequence[int], reuse: Sequence[LoadRun] = ()) -> list[MemoryRow]:
    rows: list[MemoryRow] = []
    for size in sizes:
        known = [run for run in reuse if run.participants == size and run.server_rss_during_mib]
        if known:
            row = MemoryRow(known[0], "density run")
        else:
            row = MemoryRow(measure_room(size, DURATION), "own run")
        rows.append(row)
        say(
            f"  memory N={size}: empty room {row.run.server_rss_before_mib:.1f} MiB, "
            f"{size} connected {row.run.server_rss_during_mib:.1f} MiB -> "
            f"{row.per_participant_mib:.2f} MiB per participant ({row.source})"
        )
    return rows


def markdown(rows: Sequence[MemoryRow]) -> str:
    return table(
        [
            "participants N",
            "RSS, room empty (MiB)",
            "RSS, N connected (MiB)",
            "(RSS_N - RSS_0) / N (MiB)",
            "measured in",
        ],
        [
            [
                row.size,
                fmt(row.run.server_rss_before_mib),
                fmt(row.run.server_rss_during_mib),
                fmt(row.per_participant_mib, 2),
                row.source,
            ]
            for row in rows
        ],
    )
