"""Debian's real coturn (``turnserver``) on loopback, for the TURN tests: the flags of
``deploy/turnserver.conf`` that matter (``use-auth-secret``, a narrow relay port range) plus what a
test needs (loopback listening and relay address, loopback peers allowed, a log file to read)."""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .processes import terminate

TURNSERVER = "/usr/bin/turnserver"
START_TIMEOUT = 10.0

ALLOCATION_LOGGED = "ALLOCATE processed, success"
"""What coturn logs for each allocation it grants."""


def turnserver_path() -> str:
    found = shutil.which("turnserver") or TURNSERVER
    assert Path(found).exists(), "Debian's coturn is missing: run scripts/test.sh"
    return found


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Coturn:
    """A running coturn: where it listens, its secret, and its log."""

    port: int
    secret: str
    log_file: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def allocations(self) -> int:
        """Allocations coturn granted so far, as its log tells."""
        return self.log().count(ALLOCATION_LOGGED)

    def refused_credentials(self) -> list[str]:
        """The error codes (``401``...) of requests that carried a user name and were refused
        (the first, anonymous 401 of every allocation is only the challenge)."""
        return re.findall(r"user <[^>]+>: incoming packet \S+ processed, error (\d+)", self.log())


def _wait_listening(coturn: Coturn) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while f"UDP listener opened on: 127.0.0.1:{coturn.port}" not in coturn.log():
        if coturn.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"coturn did not start; its log:\n{coturn.log()}")
        time.sleep(0.05)


@contextlib.contextmanager
def run_coturn(
    directory: Path, config: Path | None = None, relay_ports: int = 20
) -> Iterator[Coturn]:
    """``turnserver`` on a free loopback UDP port with a fresh secret, relaying from a narrow
    port range, logging to a file; stopped (by its process id) on exit. With ``config``, it
    reads that configuration file first, and these flags adapt it to a test on loopback."""
    port = free_udp_port()
    secret = secrets.token_hex(16)
    log_file = directory / "turnserver.log"
    min_port = 49152 + secrets.randbelow(10_000)
    command = [
        turnserver_path(),
        *(["-c", str(config)] if config is not None else ["-n"]),
        "--listening-ip=127.0.0.1",
        "--relay-ip=127.0.0.1",
        f"--listening-port={port}",
        "--use-auth-secret",
        f"--static-auth-secret={secret}",
        "--realm=meetnow.test",
        "--allow-loopback-peers",
        "--no-tls",
        "--no-dtls",
        "--no-tcp",
        "--no-cli",
        f"--min-port={min_port}",
        f"--max-port={min_port + relay_ports - 1}",
        "--verbose",
        "--log-file=stdout",  # what deploy/turnserver.conf says too; kept in the log file
        f"--pidfile={directory / 'turnserver.pid'}",
    ]
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=directory, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    coturn = Coturn(port, secret, log_file, process)
    try:
        _wait_listening(coturn)
        yield coturn
    finally:
        terminate(process)
