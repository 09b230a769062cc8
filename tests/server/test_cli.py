"""The ``meetnow`` command as a real process: starts, answers, stops cleanly, refuses bad settings."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import free_port

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
MEETNOW = [sys.executable, "-m", "meetnow.cli"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The current environment without any MEETNOW_ setting (the tests choose their own)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MEETNOW_")}
    clean["PYTHONUNBUFFERED"] = "1"
    return clean


def run(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        MEETNOW + args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def read_until(process: subprocess.Popen[str], needle: str, timeout: float) -> list[str]:
    """Lines of the process's stdout up to and including the first containing ``needle``."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            line = process.stdout.readline()
            if not line:  # stdout closed: the process ended
                break
            lines.append(line)
            if needle in line:
                return lines
        elif process.poll() is not None:
            break
    raise AssertionError(f"{needle!r} not printed; stdout so far: {lines!r}")


@pytest.fixture
def served(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``meetnow serve`` on a free loopback port; killed at the end if a test left it running."""
    port = free_port()
    with (tmp_path / "stderr.log").open("w+") as stderr:
        process = subprocess.Popen(
            [*MEETNOW, "serve", "--port", str(port), "--host", "127.0.0.1"],
            env=env,
            cwd=tmp_path,  # no stray .env file gets read
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            yield process, port
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
            assert process.stdout is not None
            process.stdout.close()


def get_json(url: str) -> tuple[int, object]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, json.loads(response.read())


def test_serve_runs_and_stops_on_sigint(
    served: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    process, port = served
    lines = read_until(process, f"http://127.0.0.1:{port}/", START_TIMEOUT)
    assert process.poll() is None
    assert get_json(f"http://127.0.0.1:{port}/healthz") == (200, {"status": "ok"})

    # It is a real meetnow: the rooms API works end to end.
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/rooms", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        room = json.loads(response.read())
    assert room["url"] == f"http://127.0.0.1:{port}/r/{room['id']}"

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=STOP_TIMEOUT) == 0
    stderr = (tmp_path / "stderr.log").read_text()
    assert "Traceback" not in stderr
    assert any("meetnow is running" in line for line in lines)
    # Nothing listens on the port any more (SO_REUSEADDR: closed connections may linger).
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def test_invalid_port_setting(env: dict[str, str], tmp_path: Path) -> None:
    env["MEETNOW_PORT"] = "notaport"
    result = run(["serve"], env, tmp_path)
    assert result.returncode == 2
    assert "port" in result.stderr.lower()
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 6, result.stderr
    assert "running" not in result.stdout


@pytest.mark.parametrize(
    ("args", "variables", "mentioned"),
    [
        pytest.param(["serve", "--port", "70000"], {}, "MEETNOW_PORT", id="port-out-of-range"),
        pytest.param(
            ["serve"],
            {"MEETNOW_ICE_HOST_ADDRESSES": "not-an-ip"},
            "MEETNOW_ICE_HOST_ADDRESSES",
            id="bad-address",
        ),
        pytest.param(
            ["serve"],
            {"MEETNOW_PUBLIC_URL": "ftp://meet.example"},
            "MEETNOW_PUBLIC_URL",
            id="bad-url",
        ),
        pytest.param(
            ["serve"],
            {"MEETNOW_ROOM_MAX_PARTICIPANTS": "1"},
            "MEETNOW_ROOM_MAX_PARTICIPANTS",
            id="cap-below-two",
        ),
    ],
)
def test_other_invalid_settings(
    env: dict[str, str], tmp_path: Path, args: list[str], variables: dict[str, str], mentioned: str
) -> None:
    env.update(variables)
    result = run(args, env, tmp_path)
    assert result.returncode == 2
    assert mentioned in result.stderr
    assert "Traceback" not in result.stderr


def test_ice_servers_not_json(env: dict[str, str], tmp_path: Path) -> None:
    env["MEETNOW_ICE_SERVERS"] = "stun:stun.example.org"
    result = run(["serve"], env, tmp_path)
    assert "Traceback" not in result.stderr
    assert result.returncode == 2
    assert "MEETNOW_ICE_SERVERS" in result.stderr


def test_port_in_use(env: dict[str, str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(["serve", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path)
    assert result.returncode == 1
    assert "cannot listen" in result.stderr
    assert f"127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_serve(env: dict[str, str], tmp_path: Path) -> None:
    result = run(["--help"], env, tmp_path)
    assert result.returncode == 0
    assert "serve" in result.stdout
    assert result.stdout.startswith("usage: meetnow")


def test_serve_help(env: dict[str, str], tmp_path: Path) -> None:
    result = run(["serve", "--help"], env, tmp_path)
    assert result.returncode == 0
    for option in ("--host", "--port", "--verbose"):
        assert option in result.stdout


def test_console_script_help(env: dict[str, str], tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("meetnow")
    result = subprocess.run(
        [str(script), "--help"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    assert "serve" in result.stdout


def test_no_command_is_a_usage_error(env: dict[str, str], tmp_path: Path) -> None:
    result = run([], env, tmp_path)
    assert result.returncode == 2
    assert "usage: meetnow" in result.stderr
    assert "Traceback" not in result.stderr
