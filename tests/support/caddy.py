"""Debian's Caddy run for a test: home, data and config inside the test's directory, its output
in a log file, waited for until ready and stopped by its process id (the load balancer in front
of several nodes, ``tests/support/balancer.py``; the TLS proxy of ``deploy/Caddyfile``,
``tests/server/test_deploy.py``)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .processes import terminate

CADDY = "/usr/bin/caddy"

__all__ = ["CADDY", "RunningCaddy", "caddy_environment", "caddy_running"]


def caddy_environment(directory: Path, **variables: str) -> dict[str, str]:
    """Caddy's environment: its home and XDG directories inside the test's directory."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(directory),
        "XDG_DATA_HOME": str(directory / "data"),
        "XDG_CONFIG_HOME": str(directory / "config"),
        **variables,
    }


@dataclass
class RunningCaddy:
    url: str
    """Where it answers."""
    log_file: Path

    def log(self) -> str:
        """Everything it printed so far."""
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


@contextlib.contextmanager
def caddy_running(
    caddyfile: Path,
    environment: dict[str, str],
    url: str,
    ready: Callable[[RunningCaddy], bool],
    timeout_s: float,
) -> Iterator[RunningCaddy]:
    """``caddy run`` with ``caddyfile`` (from its directory), answering at ``url``, until
    ``ready`` says so; stopped on exit."""
    assert Path(CADDY).exists(), "Debian's caddy is missing: run scripts/test.sh"
    directory = caddyfile.parent
    caddy = RunningCaddy(url, directory / "caddy.log")
    with caddy.log_file.open("wb") as log:
        process = subprocess.Popen(
            [CADDY, "run", "--config", str(caddyfile), "--adapter", "caddyfile"],
            cwd=directory,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while not ready(caddy):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"caddy did not start; its log:\n{caddy.log()}")
            time.sleep(0.05)
        yield caddy
    finally:
        terminate(process)
