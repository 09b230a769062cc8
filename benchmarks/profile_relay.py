"""Where the relay's time goes: one density run with the server under cProfile.

    .venv/bin/python -m benchmarks.profile_relay -n 12 --duration 15 [--top 30] [--output FILE]

Also the ``profile`` section of ``benchmarks.run``, which reports the shares this run measured.
cProfile slows Python code down (roughly 1.5-2x), so the CPU figures of a profiled run are not the
relay's; the split between functions is what to read. The profile covers the whole server life
(joins included), which the steady forwarding dominates.
"""

from __future__ import annotations

import argparse
import io
import pstats
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .common import LoadRun, measure_room, say, table
from .density import DensityRow, line

PARTICIPANTS = 12
DURATION = 10.0
SMOKE_PARTICIPANTS = 2
SMOKE_DURATION = 2.0

FunctionKey = tuple[str, int, str]
"""pstats' key of a function: (file, line, name)."""


def _is_idle(key: FunctionKey) -> bool:
    # The event loop waiting for the next datagram: time the relay did not spend working.
    return "select.epoll" in key[2] or key[0].endswith("selectors.py")


def _is_sendto(key: FunctionKey) -> bool:
    return "sendto" in key[2]


def _is_srtp(key: FunctionKey) -> bool:
    return "pylibsrtp" in key[0] or "pylibsrtp" in key[2]


def _is_start_up(key: FunctionKey) -> bool:
    return (
        "importlib" in key[0]
        or key[2] == "<module>"
        or any(
            word in key[2] for word in ("builtins.exec", "builtins.compile", "marshal.", "_imp.")
        )
    )


def _is_sdp(key: FunctionKey) -> bool:
    return key[0].endswith(("aiortc/sdp.py", "signaling/protocol.py")) or "/json/" in key[0]


def _is_estimator(key: FunctionKey) -> bool:
    return key[0].endswith("aiortc/rate.py")


def _is_ours(key: FunctionKey) -> bool:
    return "/signaling/" in key[0]


def _is_aiortc(key: FunctionKey) -> bool:
    return "/aiortc/" in key[0] or "/aioice/" in key[0]


def _is_event_loop(key: FunctionKey) -> bool:
    return "/asyncio/" in key[0]


CATEGORIES: tuple[tuple[str, Callable[[FunctionKey], bool]], ...] = (
    ("`sendto` system calls", _is_sendto),
    ("SRTP protect and unprotect (pylibsrtp)", _is_srtp),
    ("importing modules at start-up", _is_start_up),
    ("SDP and signaling messages (aiortc/sdp.py, signaling/protocol.py, JSON)", _is_sdp),
    ("aiortc's bandwidth estimator (aiortc/rate.py)", _is_estimator),
    ("meetnow's own Python (signaling/), forwarding included", _is_ours),
    ("the rest of aiortc and aioice (receive path, RTCP, DTLS, ICE)", _is_aiortc),
    ("asyncio's event loop (callbacks, transports)", _is_event_loop),
)
"""Checked in order; the first that matches takes the function's own time. Idle waiting
(``epoll``) is left out of the total: the shares are of the time the relay was busy."""


@dataclass
class ProfileResult:
    run: LoadRun
    busy_seconds: float
    """Own time of every profiled function but idle waiting, summed."""
    categories: list[tuple[str, float]]
    """(category, share of the total), in CATEGORIES order, then "everything else"."""
    top: list[tuple[str, float]]
    """The functions with the most own time: (name, share of the total)."""


def _describe(key: FunctionKey) -> str:
    file, number, name = key
    if file == "~":
        return name
    short = "/".join(Path(file).parts[-2:])
    return f"{name} ({short}:{number})"


def analyse(
    stats: pstats.Stats, top: int = 10
) -> tuple[float, list[tuple[str, float]], list[tuple[str, float]]]:
    """Busy time, the share of each category, and the ``top`` functions' shares."""
    own: dict[FunctionKey, float] = {
        key: entry[2]
        for key, entry in stats.stats.items()  # type: ignore[attr-defined]
        if not _is_idle(key)
    }
    total = sum(own.values())
    if total <= 0:
        return 0.0, [], []
    sums = dict.fromkeys([name for name, _ in CATEGORIES] + ["everything else"], 0.0)
    for key, seconds in own.items():
        name = next((n for n, matches in CATEGORIES if matches(key)), "everything else")
        sums[name] += seconds
    ranked = sorted(own.items(), key=lambda item: item[1], reverse=True)[:top]
    return (
        total,
        [(name, seconds / total) for name, seconds in sums.items()],
        [(_describe(key), seconds / total) for key, seconds in ranked],
    )


def measure(participants: int, duration: float, keep: Path | None = None) -> ProfileResult:
    """One loadtest against ``meetnow serve`` under cProfile; the profile is analysed here."""
    with tempfile.TemporaryDirectory() as folder:
        target = keep or Path(folder) / "relay.prof"
        run = measure_room(
            participants,
            duration,
            module="benchmarks.profiled_server",
            env={"MEETNOW_PROFILE_FILE": str(target.resolve())},
        )
        say(line("profiled relay", DensityRow(run)))
        total, categories, top = analyse(pstats.Stats(str(target)))
    for name, share in categories:
        say(f"  {share:6.1%}  {name}")
    return ProfileResult(run, total, categories, top)


def markdown(result: ProfileResult) -> str:
    return (
        table(["where", "share of profiled time"], [[n, f"{s:.1%}"] for n, s in result.categories])
        + "\n\nThe functions with the most time of their own:\n\n"
        + table(["function", "share"], [[n, f"{s:.1%}"] for n, s in result.top])
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_relay")
    parser.add_argument("-n", "--participants", type=int, default=PARTICIPANTS)
    parser.add_argument("--duration", type=float, default=DURATION)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--output", type=Path, help="keep the raw profile here (pstats format)")
    args = parser.parse_args(argv)
    result = measure(args.participants, args.duration, args.output)
    say(markdown(result))
    if args.output:
        text = io.StringIO()
        stats = pstats.Stats(str(args.output), stream=text)
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)
        say(text.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
