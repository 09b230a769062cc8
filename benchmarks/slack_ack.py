"""Slack: server-side time from receiving a signed ``/meetnow`` to acknowledging it, p50 and p99.

Slack gives a command 3 seconds; meetnow acknowledges before any Web API call. This measures it:
1,000 really signed slash commands (HMAC-SHA256, fresh timestamp each) are POSTed one after the
other over one keep-alive loopback connection to a meetnow server running the real slack-bolt
adapter, whose Web API is the fake Slack of ``tests/fakes/slack.py`` running **in its own
process** (so the cards it posts after each ack cost the server what they cost in production:
two Web API calls, ``calls.add`` and ``chat.postMessage``, but the far end's work is not on the
server's event loop).

How it is timed: an aiohttp middleware, outermost on the server's app, takes ``perf_counter()``
when the handler is entered (request line and headers parsed, body not yet read) and when the
response is ready to be written: signature check, bolt's dispatch, room creation and the ack are
inside; socket reads and writes are not. The client's round trip over loopback is printed too.

Baseline in the same run: as many ``GET /healthz`` through the same middleware and connection.
Their ratio shows what the Slack path costs over a trivial handler on this machine today.

What it measures is checked, never assumed: every ``/meetnow`` must be answered with its room's
host link and every card must reach the fake Slack, or the run fails (:class:`InvalidMeasurement`)
instead of timing refusals. The server keeps its rooms in a throwaway data directory of its own.

    .venv/bin/python -m benchmarks.slack_ack           # 1,000 commands (~25 s)
    .venv/bin/python -m benchmarks.slack_ack --quick   # 100
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from meetnow.settings import MeetnowSettings
from meetnow.wiring import create_app
from tests.fakes.slack import BOT_TOKEN, SIGNING_SECRET, signed_headers, slash_command

from .common import REPO, InvalidMeasurement, free_port, percentile, say

COMMANDS = 1000
QUICK_COMMANDS = 100
WARMUP = 20
TARGET_P99_MS = 50.0
CARD_SECONDS = 30.0
"""How long the cards may take to reach the fake Slack after the last command."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Timings:
    """Server-side handler times by path, in milliseconds."""

    def __init__(self) -> None:
        self.by_path: dict[str, list[float]] = {}
        self.recording = False

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        response = await handler(request)
        if self.recording:
            elapsed = (time.perf_counter() - started) * 1000
            self.by_path.setdefault(request.path, []).append(elapsed)
        return response


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(values, 0.50),
        "p99": percentile(values, 0.99),
        "max": max(values),
    }


def _start_fake(port: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.slack", "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "ready" not in line:
        process.kill()
        raise RuntimeError(f"the fake Slack did not start: {line!r}")
    return process


def _stop_fake(process: subprocess.Popen[str]) -> None:
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    if process.poll() is None:
        process.kill()
        process.wait()


async def run(quick: bool, *, max_rooms: int | None = None) -> dict[str, Any]:
    """Measure; print the figures as they come; return them. ``max_rooms`` (tests only) caps
    the server's rooms below what the run makes, so that its commands are refused."""
    count = QUICK_COMMANDS if quick else COMMANDS
    for name in ("bot", "slack_bolt", "slack_sdk", "aiohttp.access"):
        logging.getLogger(name).setLevel(logging.ERROR)
    fake_port = free_port()
    fake_url = f"http://127.0.0.1:{fake_port}"
    fake = await asyncio.to_thread(_start_fake, fake_port)
    runner: web.AppRunner | None = None
    data_dir = tempfile.TemporaryDirectory(prefix="meetnow-bench-")
    try:
        settings = MeetnowSettings(
            host="127.0.0.1",
            port=free_port(),
            relay_workers=0,
            ice_host_addresses=["127.0.0.1"],
            slack_bot_token=BOT_TOKEN,  # type: ignore[arg-type]
            slack_signing_secret=SIGNING_SECRET,  # type: ignore[arg-type]
            slack_api_url=f"{fake_url}/api/",
            max_rooms=max_rooms or count + WARMUP + 10,
            data_dir=Path(data_dir.name),  # the default store, never the developer's rooms
            metrics_listen="",
            # One user sends every command: lift the per-user limit, or this measures refusals.
            limit_rooms_per_user_per_hour=1e9,
            limit_rooms_per_org_per_hour=1e9,
            _env_file=None,  # type: ignore[call-arg]
        )
        app = create_app(settings)
        timings = Timings()
        app.middlewares.insert(0, timings.middleware)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.host, settings.port).start()
        base = f"http://{settings.host}:{settings.port}"

        client_ms: dict[str, list[float]] = {"/slack/events": [], "/healthz": [], "help": []}
        connector = aiohttp.TCPConnector(limit=1)  # one keep-alive connection
        async with aiohttp.ClientSession(connector=connector) as http:

            async def command(i: int, text: str | None = None) -> float:
                payload = slash_command(
                    text or f"Benchmark {i}", response_url=f"{fake_url}/response/{i}"
                )
                body = urlencode(payload)
                headers = signed_headers(SIGNING_SECRET, body)
                started = time.perf_counter()
                async with http.post(f"{base}/slack/events", data=body, headers=headers) as r:
                    answer = await r.text()
                    assert r.status == 200, r.status
                elapsed = (time.perf_counter() - started) * 1000
                if text is None and f"{base}/r/" not in answer:
                    # A refusal (rate limit, a full server) is acknowledged as fast or faster:
                    # timing it would flatter the path this benchmark names.
                    first_line = answer.splitlines()[0] if answer else "(empty)"
                    raise InvalidMeasurement(f"/meetnow was not given a room: {first_line!r}")
                return elapsed

            async def healthz() -> float:
                started = time.perf_counter()
                async with http.get(f"{base}/healthz") as r:
                    await r.read()
                    assert r.status == 200, r.status
                return (time.perf_counter() - started) * 1000

            for i in range(WARMUP):
                await command(-i - 1)
                await healthz()
            timings.recording = True
            say(f"  {count} signed slash commands, then {count} GET /healthz and {count} help")
            for i in range(count):
                client_ms["/slack/events"].append(await command(i))
            for _ in range(count):
                client_ms["/healthz"].append(await healthz())
            timings.recording = False
            help_server = len(timings.by_path["/slack/events"])
            timings.recording = True
            for i in range(count):
                client_ms["help"].append(await command(i, "help"))
            timings.recording = False
            help_ms = timings.by_path["/slack/events"][help_server:]
            del timings.by_path["/slack/events"][help_server:]

            # The cards are posted after each ack: check they all reached "Slack".
            deadline = time.monotonic() + CARD_SECONDS
            posted = 0
            while time.monotonic() < deadline:
                async with http.get(f"{fake_url}/_counts") as r:
                    posted = (await r.json()).get("chat.postMessage", 0)
                if posted >= count + WARMUP:
                    break
                await asyncio.sleep(0.2)

        if posted < count + WARMUP:
            raise InvalidMeasurement(
                f"{posted} of {count + WARMUP} cards reached the fake Slack in {CARD_SECONDS:.0f} s"
            )
        ack = summary(timings.by_path["/slack/events"])
        base_line = summary(timings.by_path["/healthz"])
        help_line = summary(help_ms)
        result: dict[str, Any] = {
            "commands": count,
            "timing": "aiohttp middleware (server side), plus client round trip on loopback",
            "ack_ms": ack,
            "ack_round_trip_ms": summary(client_ms["/slack/events"]),
            "healthz_ms": base_line,
            "healthz_round_trip_ms": summary(client_ms["/healthz"]),
            "help_ms": help_line,
            "ratio_p50": ack["p50"] / base_line["p50"],
            "ratio_p99": ack["p99"] / base_line["p99"],
            "target_p99_ms": TARGET_P99_MS,
            "cards_posted": posted,
        }
        say(
            f"  ack (server side):  p50 {ack['p50']:.2f} ms  p99 {ack['p99']:.2f} ms  "
            f"max {ack['max']:.2f} ms  (target p99 <= {TARGET_P99_MS:.0f} ms)"
        )
        rt = result["ack_round_trip_ms"]
        say(f"  ack (round trip):   p50 {rt['p50']:.2f} ms  p99 {rt['p99']:.2f} ms")
        say(
            f"  /healthz baseline:  p50 {base_line['p50']:.3f} ms  p99 {base_line['p99']:.3f} ms"
            f"  -> ratio p50 {result['ratio_p50']:.0f}x, p99 {result['ratio_p99']:.0f}x"
        )
        say(
            f"  /meetnow help:      p50 {help_line['p50']:.2f} ms  p99 {help_line['p99']:.2f} ms"
            "  (bolt's path alone: signature, dispatch, ack with text; no room, no card)"
        )
        say(f"  cards posted to the fake Web API: {posted} of {count + WARMUP}")
        return result
    finally:
        if runner is not None:
            await runner.cleanup()
        await asyncio.to_thread(_stop_fake, fake)
        data_dir.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_COMMANDS} commands")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    arguments = parser.parse_args()
    figures = asyncio.run(run(arguments.quick))
    if arguments.json:
        print(json.dumps(figures, indent=2))
