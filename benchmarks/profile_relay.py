"""Where the relay's time goes: one density run with the server under cProfile.

    .venv/bin/python -m benchmarks.profile_relay -n 12 --duration 15 [--top 30] [--output FILE]

Not part of ``benchmarks.run``: cProfile slows Python code down (roughly 1.5-2x), so the CPU figures
of this run are not the relay's; the split between functions is what to read. The profile covers
the whole server life (joins included), which the steady forwarding dominates.
"""

from __future__ import annotations

import argparse
import io
import pstats
import sys
import tempfile
from pathlib import Path

from .common import measure_room, say
from .density import DensityRow, line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_relay")
    parser.add_argument("-n", "--participants", type=int, default=12)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--output", type=Path, help="keep the raw profile here (pstats format)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        target = args.output or Path(folder) / "relay.prof"
        run = measure_room(
            args.participants,
            args.duration,
            module="benchmarks.profiled_server",
            env={"MEETNOW_PROFILE_FILE": str(target.resolve())},
        )
        say(line("profiled relay", DensityRow(run)))
        text = io.StringIO()
        stats = pstats.Stats(str(target), stream=text)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)
        say(text.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
