"""The benchmark code runs: every section of ``benchmarks.run`` in its smoke mode (seconds each,
numbers not recorded), so a change that breaks a benchmark fails CI, not the next full run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from benchmarks.run import SECTIONS, SMOKE, Results, failures, run_section

from ..conftest import REPO, clean_env


def test_every_benchmark_section_runs_in_smoke_mode(tmp_path: Path) -> None:
    # With the default store and a data home of its own: a benchmark must keep its rooms away
    # from the developer's (a store filled by earlier runs turned the chat benchmarks' rooms away).
    env = clean_env(XDG_DATA_HOME=str(tmp_path / "data"))
    del env["MEETNOW_STORE"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    for section in SECTIONS:
        assert f"\n== {section}\n" in output, section
    assert "Smoke run: nothing written." in output
    assert "FAILED" not in output
    assert not (tmp_path / "data" / "meetnow").exists(), "a benchmark used the default data dir"


def test_a_section_that_raises_fails_the_smoke_run() -> None:
    # The test of the test above: a broken section is reported, not swallowed.
    results = Results(SMOKE)
    run_section(results, "density", lambda: 1 / 0, watch_other=False)
    assert results.density is None
    assert failures(results) == ["density: ZeroDivisionError: division by zero"]
