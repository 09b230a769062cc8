"""The real ``meetnow serve``, as an operator starts it: the installed ``meetnow`` script, its
default relay worker processes, in an empty directory and a clean environment (so it reads no
``.env`` and no ``MEETNOW_`` setting of the developer's), with everything it prints kept."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..conftest import free_port

START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


REPO = Path(__file__).resolve().parent.parent.parent


def meetnow_command() -> list[str]:
    """The console script pip installed next to this Python (``python -m meetnow.cli`` if the
    package was not installed with its scripts)."""
    script = Path(sys.executable).with_name("meetnow")
    return [str(script)] if script.exists() else [sys.executable, "-m", "meetnow.cli"]


def clean_environment(home: Path, **settings: str) -> dict[str, str]:
    """Only what a process needs to run, plus ``settings`` (``MEETNOW_*`` values)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "MEETNOW_METRICS_LISTEN": "",  # tests never take the default metrics port
    }
    if not Path(sys.executable).with_name("meetnow").exists():
        env["PYTHONPATH"] = str(REPO)  # not installed: import it from the checkout
    env.update(settings)
    return env


@dataclass
class ServeProcess:
    base_url: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    """Everything the server and its workers printed, stdout and stderr, so far."""
    reader: threading.Thread | None = None

    def wait_for_line(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(needle in line for line in list(self.lines)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not printed; output: {self.lines!r}")
            time.sleep(0.05)

    def stop(self) -> str:
        """Ctrl-C, as an operator stops it; returns all it printed, start to exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=STOP_TIMEOUT)
        if self.reader is not None:
            self.reader.join(STOP_TIMEOUT)  # ends when the pipe closes: every line is read
        return "".join(self.lines)


@contextlib.contextmanager
def meetnow_serve(directory: Path, *arguments: str, **settings: str) -> Iterator[ServeProcess]:
    """``meetnow serve --port P [arguments]`` run from ``directory`` (empty: no ``.env``) with
    loopback ICE candidates, so calls work on this machine, and ``settings`` as environment."""
    assert not (directory / ".env").exists()
    port = free_port()
    env = clean_environment(directory, MEETNOW_ICE_HOST_ADDRESSES="127.0.0.1", **settings)
    process = subprocess.Popen(
        [*meetnow_command(), "serve", "--port", str(port), *arguments],
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    running = ServeProcess(f"http://127.0.0.1:{port}", process)
    assert process.stdout is not None
    running.reader = threading.Thread(
        target=running.lines.extend, args=(process.stdout,), daemon=True
    )
    running.reader.start()
    try:
        running.wait_for_line("meetnow is running", START_TIMEOUT)
        yield running
    except BaseException:
        # A failing test shows what the server said (pytest prints captured output on failure).
        print(f"--- meetnow serve on {running.base_url}, last lines ---")
        print("".join(running.lines[-60:]))
        raise
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(STOP_TIMEOUT)
