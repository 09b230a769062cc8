"""Figures quoted in the hand-written docs agree with the generated benchmark report."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent


def mediarelay_held(benchmarks_md: str) -> tuple[int, float]:
    """(largest room MediaRelay held, its CPU per stream in %) from docs/benchmarks.md."""
    section = benchmarks_md.split("## 2. Baseline", 1)[1].split("\n## ", 1)[0]
    held: list[tuple[int, float]] = []
    for row in section.splitlines():
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        if len(cells) == 9 and cells[0].isdigit() and cells[-1] == "yes":
            held.append((int(cells[0]), float(cells[3])))
    assert held, "no MediaRelay size held in docs/benchmarks.md"
    return max(held)


def architecture_claim(architecture_md: str) -> tuple[int, float]:
    found = re.search(
        r"MediaRelay`.*?holds (\d+) people at ([\d.]+)% of a core per stream",
        architecture_md,
        re.S,
    )
    assert found, "docs/architecture.md quotes no MediaRelay figure"
    return int(found.group(1)), float(found.group(2))


def mismatches(benchmarks_md: str, architecture_md: str) -> list[str]:
    measured, quoted = mediarelay_held(benchmarks_md), architecture_claim(architecture_md)
    return [] if measured == quoted else [f"benchmark {measured} != architecture {quoted}"]


def test_architecture_quotes_the_benchmarks_mediarelay_figures() -> None:
    benchmarks_md = (REPO / "docs" / "benchmarks.md").read_text()
    architecture_md = (REPO / "docs" / "architecture.md").read_text()
    assert mismatches(benchmarks_md, architecture_md) == []


def test_the_check_catches_a_stale_figure() -> None:
    benchmarks_md = (REPO / "docs" / "benchmarks.md").read_text()
    stale = "aiortc's `MediaRelay` ... it holds 4 people at 10.0% of a core per stream"
    assert mismatches(benchmarks_md, stale) != []
