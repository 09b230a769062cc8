"""Health and logs for operators: ``/healthz`` tells the truth about the relay workers, a worker that
keeps crashing is restarted with backoff, and ``MEETNOW_LOG_FORMAT=json`` writes one JSON object per
log record with the same redaction as the text log."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from signaling.relay import RelayConfig
from signaling.workers import WorkerPool, count_failure, restart_delay

from ..conftest import RunningServer, free_port, start_server, test_settings
from ..support.serve_process import START_TIMEOUT, clean_environment, meetnow_command


@pytest.fixture
async def two_worker_server() -> AsyncIterator[RunningServer]:
    running, runner = await start_server(test_settings(relay_workers=2))
    yield running
    await runner.cleanup()


async def health(http: aiohttp.ClientSession, base_url: str) -> tuple[int, dict[str, str]]:
    async with http.get(base_url + "/healthz") as response:
        body: dict[str, str] = await response.json()
        return response.status, body


async def first_health(
    http: aiohttp.ClientSession, base_url: str, status: int, timeout: float
) -> dict[str, str] | None:
    """Poll ``/healthz`` until it answers ``status``; its body, or None if it never did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got, body = await health(http, base_url)
        if got == status:
            return body
        await asyncio.sleep(0.02)
    return None


async def test_healthz_is_503_with_the_reason_while_a_worker_is_down(
    two_worker_server: RunningServer,
) -> None:
    server = two_worker_server
    pool = server.meetnow.relay
    assert isinstance(pool, WorkerPool)
    async with aiohttp.ClientSession() as http:
        assert await health(http, server.base_url) == (200, {"status": "ok"})
        victim = pool.worker_pids()[1]
        os.kill(victim, signal.SIGKILL)
        down = await first_health(http, server.base_url, 503, 10)
        assert down is not None, "never 503 after a worker was killed"
        assert down["status"] == "unavailable"
        assert "relay worker 2 of 2" in down["reason"], down
        assert await first_health(http, server.base_url, 200, 30) == {"status": "ok"}
    assert victim not in pool.worker_pids() and pool.workers_up() == 2
    assert pool.restarts == 1


async def test_the_health_poll_reports_a_503_that_never_came(server: RunningServer) -> None:
    # Test of the test above: on a server with nothing down the poll for 503 comes back empty.
    async with aiohttp.ClientSession() as http:
        assert await first_health(http, server.base_url, 503, 0.3) is None


def test_backoff_policy() -> None:
    # The first exit restarts at once; quick exits in a row wait 0.5 s, doubling, up to 30 s.
    assert [restart_delay(n) for n in range(1, 9)] == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert restart_delay(10_000) == 30.0  # no overflow however long it keeps crashing
    # A worker that ran for a while before exiting starts the count again.
    assert count_failure(5, uptime=1.0) == 6
    assert count_failure(5, uptime=3600.0) == 1


CRASH_LOOP_SECONDS = 3.0


def tight_loop(restarts: int, seconds: float) -> bool:
    """More restarts than the backoff allows: with 0, 0.5, 1 and 2 s between them, at most four
    fit in three seconds; a loop without backoff makes dozens."""
    return restarts > 2 * seconds


async def restarts_of_a_worker_that_dies_at_once(**pool_options: object) -> int:
    pool = WorkerPool(
        1,
        RelayConfig(),
        ["127.0.0.1"],
        command=[sys.executable, "-c", "raise SystemExit(3)"],
        **pool_options,  # type: ignore[arg-type]
    )
    await pool.start()
    try:
        await asyncio.sleep(CRASH_LOOP_SECONDS)
        return pool.restarts
    finally:
        await pool.close()


async def test_a_worker_that_keeps_crashing_is_restarted_with_backoff() -> None:
    restarts = await restarts_of_a_worker_that_dies_at_once()
    assert restarts >= 2, "it is restarted"
    assert not tight_loop(restarts, CRASH_LOOP_SECONDS), restarts


async def test_the_crash_loop_check_catches_restarts_without_backoff() -> None:
    # Test of the test above: the same crash loop with no delay is reported as a tight loop.
    restarts = await restarts_of_a_worker_that_dies_at_once(backoff=lambda failures: 0.0)
    assert tight_loop(restarts, CRASH_LOOP_SECONDS), restarts


# ------------------------------------------------------------------------------- JSON logs


def not_json_records(lines: list[str]) -> list[str]:
    """Lines that are not one JSON log record (time, level, logger, message)."""
    bad = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            bad.append(line)
            continue
        if not isinstance(record, dict) or not {"time", "level", "logger", "message"} <= set(
            record
        ):
            bad.append(line)
    return bad


def test_the_json_check_catches_a_text_line() -> None:
    text_line = "2026-01-01 10:00:00,000 ERROR signaling.http: Error handling request"
    assert not_json_records([text_line, '{"time": "t"}']) == [text_line, '{"time": "t"}']


def test_json_logs_one_record_a_line_and_no_client_address(tmp_path: Path) -> None:
    port = free_port()
    env = clean_environment(
        tmp_path,
        MEETNOW_LOG_FORMAT="json",
        MEETNOW_RELAY_WORKERS="1",
        MEETNOW_METRICS_LISTEN="",
        MEETNOW_ICE_HOST_ADDRESSES="127.0.0.1",
    )
    process = subprocess.Popen(
        [*meetnow_command(), "serve", "--port", str(port), "--verbose"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_port(port, process)
        # A malformed request from a client address of its own: aiohttp logs such requests
        # with the client's address, and the redacted log must not.
        with socket.create_connection(("127.0.0.1", port), source_address=("127.0.0.2", 0)) as s:
            client_port = s.getsockname()[1]
            s.sendall(b"GET / HTTP/1.1\r\nHost: \x00bad\r\n\r\n")
            s.recv(4096)
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, stdout
    assert not_json_records(lines) == []
    records = [json.loads(line) for line in lines]
    assert any(r["logger"] == "signaling.http" for r in records), records
    assert "127.0.0.2" not in stderr and f":{client_port}" not in stderr


def wait_for_port(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("meetnow serve did not start")
