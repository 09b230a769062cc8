"""Stopping the servers a test started (Caddy, coturn)."""

from __future__ import annotations

import subprocess
from typing import Any

STOP_TIMEOUT = 10.0


def terminate(process: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``STOP_TIMEOUT``; reaped either way."""
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_TIMEOUT)
