"""Shared fixtures: a real meetnow server on a loopback port, with a controllable clock."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from meetnow.settings import MeetnowSettings
from meetnow.wiring import create_app
from signaling.server import SERVER, MeetnowServer

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"

# Tests never read the developer's settings: no MEETNOW_ variable from the shell reaches a test's
# Settings or a server process it starts (and test_settings() and server processes read no .env).
for _name in [name for name in os.environ if name.startswith("MEETNOW_")]:
    del os.environ[_name]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a server process a test starts: this one (free of MEETNOW_ settings),
    the repository importable from any working directory, and ``extra``."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    env["MEETNOW_METRICS_LISTEN"] = ""  # never the default 9464: server processes run side by side
    env["MEETNOW_STORE"] = "memory"  # never the developer's data dir (durable tests set their own)
    return {**env, **extra}


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningServer:
    """A meetnow app listening on loopback."""

    base_url: str
    app: web.Application
    clock: FakeClock | None

    @property
    def meetnow(self) -> MeetnowServer:
        return self.app[SERVER]

    def new_room(self, topic: str | None = None) -> str:
        return self.meetnow.rooms.create_room(topic).id


async def start_server(
    settings: MeetnowSettings, clock: FakeClock | None = None
) -> tuple[RunningServer, web.AppRunner]:
    app = create_app(settings, clock=clock) if clock else create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    return RunningServer(f"http://{settings.host}:{settings.port}", app, clock), runner


def test_settings(**overrides: object) -> MeetnowSettings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": free_port(),
        "ice_host_addresses": ["127.0.0.1"],
        "relay_workers": 0,  # in-process relay; tests/signaling/test_workers.py covers worker processes
        "metrics_listen": "",  # off: servers run side by side (tests/server/test_metrics.py sets a port)
        "store": "memory",  # never the developer's data dir (tests/server/test_durable_rooms.py)
        "_env_file": None,
    }
    values.update(overrides)
    return MeetnowSettings(**values)  # type: ignore[arg-type]


test_settings.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    running, runner = await start_server(test_settings())
    yield running
    await runner.cleanup()


@pytest.fixture
async def clocked_server() -> AsyncIterator[RunningServer]:
    clock = FakeClock()
    running, runner = await start_server(test_settings(room_empty_grace_seconds=30), clock)
    yield running
    await runner.cleanup()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@dataclass
class ServerProcess:
    """``meetnow serve`` in its own process (through tests/support/audited_server.py)."""

    base_url: str
    process: subprocess.Popen[str]
    audit_file: Path
    output: list[str] = field(default_factory=list)
    """Lines the server printed after it started."""

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far, from /proc."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    async def create_room(self, topic: str | None = None) -> str:
        async with aiohttp.ClientSession() as http:
            body = {"topic": topic} if topic else {}
            async with http.post(f"{self.base_url}/api/rooms", json=body) as response:
                assert response.status == 201
                room_id: str = (await response.json())["id"]
                return room_id

    def stop(self) -> dict[str, float]:
        """Stop the server (SIGINT, as Ctrl-C) and return its codec counts and CPU time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(timeout=15)
        result: dict[str, float] = json.loads(self.audit_file.read_text())
        return result


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    """In-process relay, so the codec audit sees every peer connection."""
    yield from _server_process(tmp_path, relay_workers=0)


@pytest.fixture
def server_process_with_workers(tmp_path: Path) -> Iterator[ServerProcess]:
    """The default deployment: relay worker processes, two here."""
    yield from _server_process(tmp_path, relay_workers=2)


def start_audited_server(
    tmp_path: Path, *, relay_workers: int, mediarelay: bool = False
) -> ServerProcess:
    """``meetnow serve`` (or the MediaRelay baseline) with every process's codec work counted;
    ``ServerProcess.stop()`` returns the totals (see ``tests/support/audited_server.py``)."""
    port = free_port()
    audit_file = tmp_path / "audit.json"
    env = clean_env(
        MEETNOW_ICE_HOST_ADDRESSES="127.0.0.1",
        MEETNOW_RELAY_WORKERS=str(relay_workers),
        MEETNOW_AUDIT_FILE=str(audit_file),
        MEETNOW_AUDIT_MEDIARELAY="1" if mediarelay else "0",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.audited_server", "--port", str(port)],
        cwd=tmp_path,  # so the server reads no .env of the developer's
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "meetnow is running" in line, line
    running = ServerProcess(f"http://127.0.0.1:{port}", process, audit_file)
    # Keep reading its output so a chatty server never blocks on a full pipe.
    threading.Thread(target=running.output.extend, args=(process.stdout,), daemon=True).start()
    return running


def _server_process(tmp_path: Path, relay_workers: int) -> Iterator[ServerProcess]:
    running = start_audited_server(tmp_path, relay_workers=relay_workers)
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait()
