"""Run meetnow's benchmarks and write docs/benchmarks.md.

    .venv/bin/python -m benchmarks.run                 # everything (~15 minutes), writes the doc
    .venv/bin/python -m benchmarks.run --quick         # a short run, prints only
    .venv/bin/python -m benchmarks.run --smoke         # every section in seconds (CI): exit 1 if one fails
    .venv/bin/python -m benchmarks.run --only latency  # one section, prints only

Sections: density, mediarelay, latency, browser, meeting, sharecost, memory, profile, chat,
network, multinode. Each prints its figures as it goes. ``--output PATH`` writes the report for a partial or
quick run too (never for a smoke run: its numbers are not worth keeping). Figures are printed, never asserted: the machines these run on
are shared and noisy, so every figure is set against a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import (
    browser_join,
    chat,
    density,
    latency,
    mediarelay_baseline,
    meeting_browser,
    memory,
    multinode,
    network,
    profile_relay,
    screen_share_cost,
)
from .common import NOISY_PERCENT, REPO, OtherLoad, say, wait_for_quiet

QUIET_WAIT = 120.0
"""Longest wait for a quiet machine before a section."""
SECTIONS = (
    "density",
    "mediarelay",
    "latency",
    "browser",
    "meeting",
    "sharecost",
    "memory",
    "profile",
    "chat",
    "network",
    "multinode",
)
DOC = REPO / "docs" / "benchmarks.md"


@dataclass(frozen=True)
class Plan:
    """How much of each section a run measures."""

    mode: str
    """"full", "quick" or "smoke"."""
    density_sizes: Sequence[int]
    density_seconds: float
    mediarelay_sizes: Sequence[int]
    latency_seconds: float
    latency_rounds: int
    latency_sizes: Sequence[int]
    browser_joins: int
    memory_sizes: Sequence[int]
    profile_participants: int
    profile_seconds: float
    meeting_shares: int
    meeting_speak_seconds: float
    sharecost_pairs: int
    sharecost_seconds: float

    @property
    def waits_for_quiet(self) -> bool:
        return self.mode == "full"


FULL = Plan(
    "full",
    density.SIZES,
    density.DURATION,
    mediarelay_baseline.SIZES,
    latency.DURATION,
    latency.ROUNDS,
    latency.SIZES,
    browser_join.JOINS,
    memory.SIZES,
    profile_relay.PARTICIPANTS,
    profile_relay.DURATION,
    meeting_browser.SHARES,
    meeting_browser.SPEAK_SECONDS,
    screen_share_cost.PAIRS,
    screen_share_cost.DURATION,
)
QUICK = Plan(
    "quick",
    density.QUICK_SIZES,
    density.QUICK_DURATION,
    mediarelay_baseline.QUICK_SIZES,
    latency.QUICK_DURATION,
    1,
    latency.SIZES,
    browser_join.QUICK_JOINS,
    memory.QUICK_SIZES,
    profile_relay.PARTICIPANTS,
    density.QUICK_DURATION,
    meeting_browser.QUICK_SHARES,
    meeting_browser.QUICK_SPEAK_SECONDS,
    screen_share_cost.QUICK_PAIRS,
    density.QUICK_DURATION,
)
SMOKE = Plan(
    "smoke",
    (2,),
    2.0,
    (2,),
    latency.SMOKE_DURATION,
    1,
    latency.SMOKE_SIZES,
    1,
    (2,),
    profile_relay.SMOKE_PARTICIPANTS,
    profile_relay.SMOKE_DURATION,
    1,
    meeting_browser.SMOKE_SPEAK_SECONDS,
    1,
    screen_share_cost.SMOKE_DURATION,
)


@dataclass
class Results:
    plan: Plan
    density: list[density.DensityRow] | None = None
    mediarelay: mediarelay_baseline.BaselineResult | None = None
    latency: latency.LatencyResult | None = None
    browser: browser_join.BrowserResult | None = None
    meeting: meeting_browser.FeaturesResult | None = None
    sharecost: screen_share_cost.ShareCostResult | None = None
    memory: list[memory.MemoryRow] | None = None
    profile: profile_relay.ProfileResult | None = None
    chat: list[chat.ChatResult] | None = None
    network: network.NetworkResult | None = None
    multinode: dict[str, list[float]] | None = None
    errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    other_load: dict[str, float] = field(default_factory=dict)
    """Per section: CPU used by processes this run did not start, % of one core."""

    @property
    def quick(self) -> bool:
        return self.plan.mode != "full"


def run_section(
    results: Results,
    name: str,
    action: Callable[[], Any],
    *,
    watch_other: bool = True,
    retry_if_noisy: bool = False,
) -> None:
    """Run one section (after waiting for a quiet machine, in a full run). ``watch_other=False``
    where this run's own processes leave its process tree (Chromium re-parents its helpers to
    init), which would pass them off as other load; ``retry_if_noisy`` runs a short section again
    if other processes were busy meanwhile."""
    say(f"\n== {name}")
    full = results.plan.waits_for_quiet
    if full:
        wait_for_quiet(QUIET_WAIT)
    started = time.monotonic()
    other = OtherLoad()
    try:
        setattr(results, name, action())
        if retry_if_noisy and full and (load := other.percent()) > NOISY_PERCENT:
            say(f"  other processes used {load:.0f}% of a core meanwhile: once more")
            wait_for_quiet(QUIET_WAIT)
            started, other = time.monotonic(), OtherLoad()
            setattr(results, name, action())
    except Exception as error:  # one broken section must not lose the others' figures
        traceback.print_exc()
        results.errors[name] = f"{type(error).__name__}: {error}"
        say(f"  {name} failed: {results.errors[name]}")
    results.seconds[name] = time.monotonic() - started
    if watch_other:
        results.other_load[name] = other.percent()
        say(
            f"  ({results.seconds[name]:.0f} s; CPU of other processes on the machine meanwhile: "
            f"{results.other_load[name]:.0f}% of a core)"
        )
    else:
        say(f"  ({results.seconds[name]:.0f} s)")


def run(selected: Sequence[str], plan: Plan) -> Results:
    results = Results(plan)
    if "density" in selected:
        run_section(
            results, "density", lambda: density.measure(plan.density_sizes, plan.density_seconds)
        )
    if "mediarelay" in selected:
        run_section(
            results,
            "mediarelay",
            lambda: mediarelay_baseline.measure(
                plan.mediarelay_sizes, plan.density_seconds, results.density or []
            ),
        )
    if "latency" in selected:
        run_section(
            results,
            "latency",
            lambda: latency.measure(
                plan.latency_seconds,
                plan.latency_rounds,
                sizes=plan.latency_sizes,
                min_packets=0 if plan.mode == "smoke" else latency.MIN_PACKETS,
            ),
            retry_if_noisy=True,
        )
    if "browser" in selected:
        run_section(
            results,
            "browser",
            lambda: browser_join.measure(plan.browser_joins),
            watch_other=False,
        )
    if "meeting" in selected:
        run_section(
            results,
            "meeting",
            lambda: meeting_browser.measure(plan.meeting_shares, plan.meeting_speak_seconds),
            watch_other=False,
        )
    if "sharecost" in selected:
        run_section(
            results,
            "sharecost",
            lambda: screen_share_cost.measure(plan.sharecost_pairs, plan.sharecost_seconds),
        )
    if "memory" in selected:
        reuse = [row.run for row in results.density or []]
        run_section(results, "memory", lambda: memory.measure(plan.memory_sizes, reuse))
    if "profile" in selected:
        run_section(
            results,
            "profile",
            lambda: profile_relay.measure(plan.profile_participants, plan.profile_seconds),
        )
    if "chat" in selected:
        run_section(results, "chat", lambda: chat.measure(plan.mode != "full"))
    if "network" in selected:
        # Chromium re-parents its helpers, as in the browser section; the smoke run builds the
        # namespaces without browsers and runs the load-generator check for 3 s.
        run_section(results, "network", lambda: network.measure(plan.mode), watch_other=False)
    if "multinode" in selected:
        run_section(results, "multinode", lambda: asyncio.run(multinode.run(plan.mode)))
    return results


def failures(results: Results) -> list[str]:
    """Sections that raised, and chat adapters whose benchmark did not run."""
    found = [f"{name}: {error}" for name, error in results.errors.items()]
    found += [f"chat {c.adapter}: {c.note}" for c in results.chat or [] if c.figures is None]
    if results.meeting is not None and not results.meeting.share_ms:
        found.append("meeting: no screen share reached the other page")
    if results.multinode is not None and not results.multinode.get("multinode_join_forwarded_ms"):
        found.append("multinode: no join through a forwarding node reached a frame")
    if results.network is not None and not (results.network.capped and results.network.capped.rows):
        found.append("network: the load-generator check measured nothing")
    return found


def main(argv: list[str] | None = None) -> int:
    from .report import report  # the report imports every section; keep --help fast

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n")[0]
    )
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--quick", action="store_true", help="a short run")
    modes.add_argument(
        "--smoke",
        action="store_true",
        help="every section for a few seconds, to prove the code runs (CI); exit 1 if one fails",
    )
    parser.add_argument(
        "--only", choices=SECTIONS, action="append", help="run only this section (repeatable)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        help=f"write the report here (default: {DOC.relative_to(REPO)} for a full run; "
        "nothing for --quick or --only; never for --smoke)",
    )
    args = parser.parse_args(argv)
    plan = SMOKE if args.smoke else QUICK if args.quick else FULL
    selected = args.only or list(SECTIONS)
    command = shlex.join([".venv/bin/python", "-m", "benchmarks.run", *(argv or sys.argv[1:])])
    started = time.monotonic()
    results = run(selected, plan)
    total = time.monotonic() - started
    say(f"\nAll done in {total / 60:.1f} minutes.")
    broken = failures(results)
    for failure in broken:
        say(f"  FAILED {failure}")
    if plan.mode == "smoke":
        say("Smoke run: nothing written." if not broken else "Smoke run failed.")
        return 1 if broken else 0
    output = args.output or (DOC if plan.mode == "full" and not args.only else None)
    if output is not None:
        output.write_text(report(results, command, total))
        say(f"Report written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
