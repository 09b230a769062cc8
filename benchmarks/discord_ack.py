"""How fast ``/meetnow`` is answered on Discord: INTERACTION_CREATE to interaction callback.

    .venv/bin/python -m benchmarks.discord_ack            # 1,000 interactions per figure
    .venv/bin/python -m benchmarks.discord_ack --quick    # 200

Everything runs in this one process and event loop, on loopback: the fake Discord of the tests
(``tests/fakes/discord.py``: REST and gateway websocket), a real meetnow server with the real
discord.py gateway bot pointed at it, and the HTTP interactions endpoint. Interactions go one at a
time (no queueing), each creating a room like a real ``/meetnow``.

Figures, each p50 and p99 over the same number of interactions:

- **gateway bot**: the fake sends INTERACTION_CREATE on the gateway websocket; the clock stops
  when the bot's ``POST /interactions/{id}/{token}/callback`` reaches the fake's REST handler.
- **baseline**: the same fake and the same measurement with the thinnest possible client instead
  of discord.py and meetnow: a raw aiohttp websocket that parses the event and posts a fixed
  callback. It is this machine's floor for "gateway event in, REST call out" in Python; the
  ratio says what discord.py, the command tree, room creation and the embed cost on top.
- **HTTP endpoint**: a really signed ``POST /discord/interactions`` until its response (Ed25519
  check, room creation, the answer) as the client sees it.

Discord's deadline is 3 s; on a real network add the round trips to Discord.

What it measures is checked, never assumed: every answer (gateway callback, HTTP response) must
carry its new room's link, or the run fails (:class:`InvalidMeasurement`) instead of timing
refusals. The server keeps its rooms in a throwaway data directory of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meetnow.settings import MeetnowSettings
from meetnow.wiring import create_app
from tests.fakes.discord import APPLICATION_ID, GUILD_ID, FakeDiscord

from .common import InvalidMeasurement, free_port, percentile, say

QUICK_INTERACTIONS = 200
INTERACTIONS = 1000
WARMUP = 20


def _check_answer(answer: Any, room_link: str) -> None:
    """Raise unless ``answer`` (an interaction callback's or response's body) gives a room."""
    if room_link not in json.dumps(answer):
        content = answer.get("data", {}).get("content") if isinstance(answer, dict) else None
        raise InvalidMeasurement(f"/meetnow was not given a room: {content or answer!r:.200}")


def _ms(values: list[float]) -> tuple[float, float]:
    return percentile(values, 0.50) * 1000, percentile(values, 0.99) * 1000


async def _gateway_latencies(
    fake: FakeDiscord, count: int, room_link: str | None = None
) -> list[float]:
    """One interaction at a time over the fake's gateway; seconds from send to callback (each
    checked to give a room at ``room_link``, unless None: the baseline's fixed answer)."""
    latencies: list[float] = []
    for index in range(WARMUP + count):
        payload = await fake.send_interaction()
        interaction_id = int(payload["id"])
        answered = fake.callback_at.__contains__
        await fake.wait_for(lambda: answered(interaction_id), timeout=10)  # noqa: B023
        if room_link is not None:
            callback = next(
                call
                for call in reversed(fake.calls)
                if call.route == "callback" and call.path.split("/")[-3] == str(interaction_id)
            )
            _check_answer(callback.body, room_link)
        if index >= WARMUP:
            latencies.append(fake.callback_at[interaction_id] - fake.sent_at[interaction_id])
    return latencies


async def _raw_client(fake: FakeDiscord, stop: asyncio.Event) -> None:
    """The baseline client: IDENTIFY, then answer each INTERACTION_CREATE with a fixed callback."""
    callback = {"type": 4, "data": {"content": "ok"}}
    async with aiohttp.ClientSession() as http, http.ws_connect(fake.gateway_url) as ws:
        async for frame in ws:
            message = json.loads(frame.data)
            if message["op"] == 10:
                identify = {"token": fake.token, "intents": 1, "properties": {}, "shard": [0, 1]}
                await ws.send_str(json.dumps({"op": 2, "d": identify}))
            elif message.get("t") == "INTERACTION_CREATE":
                d = message["d"]
                url = f"{fake.api_url}/interactions/{d['id']}/{d['token']}/callback"
                async with http.post(url, json=callback, params={"with_response": "1"}) as r:
                    await r.read()
            if stop.is_set():
                break


async def _http_latencies(base_url: str, fake: FakeDiscord, count: int) -> list[float]:
    """Signed POSTs to the HTTP interactions endpoint; seconds until each response (each
    checked to give a room)."""
    key = _KEY
    latencies: list[float] = []
    async with aiohttp.ClientSession() as http:
        for index in range(WARMUP + count):
            body = json.dumps(fake.interaction_payload()).encode()
            timestamp = str(int(time.time()))
            headers = {
                "X-Signature-Ed25519": key.sign(timestamp.encode() + body).hex(),
                "X-Signature-Timestamp": timestamp,
                "Content-Type": "application/json",
            }
            started = time.perf_counter()
            async with http.post(
                f"{base_url}/discord/interactions", data=body, headers=headers
            ) as r:
                answer = await r.json()
                assert r.status == 200, r.status
            _check_answer(answer, f"{base_url}/r/")
            if index >= WARMUP:
                latencies.append(time.perf_counter() - started)
    return latencies


_KEY = Ed25519PrivateKey.generate()


async def run(quick: bool, *, max_rooms: int | None = None) -> dict[str, Any]:
    """Measure; print the figures as they come; return them. ``max_rooms`` (tests only) caps
    the server's rooms below what the run makes, so that its commands are refused."""
    count = QUICK_INTERACTIONS if quick else INTERACTIONS
    results: dict[str, Any] = {"interactions": count}

    # The thin baseline first, on its own fake.
    fake = await FakeDiscord().start()
    stop = asyncio.Event()
    client = asyncio.ensure_future(_raw_client(fake, stop))
    try:
        await asyncio.wait_for(fake.ready.wait(), 10)
        baseline = await _gateway_latencies(fake, count)
    finally:
        stop.set()
        client.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await client
        await fake.close()
    results["baseline_p50_ms"], results["baseline_p99_ms"] = _ms(baseline)
    say(
        f"  baseline (raw websocket -> REST): p50 {results['baseline_p50_ms']:.2f} ms, "
        f"p99 {results['baseline_p99_ms']:.2f} ms"
    )

    fake = await FakeDiscord().start()
    port = free_port()
    data_dir = tempfile.TemporaryDirectory(prefix="meetnow-bench-")
    settings = MeetnowSettings(
        host="127.0.0.1",
        port=port,
        relay_workers=0,
        ice_host_addresses=["127.0.0.1"],
        max_rooms=max_rooms or 100_000,
        data_dir=Path(data_dir.name),  # the default store, never the developer's rooms
        metrics_listen="",
        # One user sends every command: lift the per-user limit, or this measures refusals.
        limit_rooms_per_user_per_hour=1e9,
        limit_rooms_per_org_per_hour=1e9,
        discord_token=fake.token,  # type: ignore[arg-type]
        discord_api_url=fake.api_url,
        discord_guild_ids=[GUILD_ID],
        discord_public_key=_KEY.public_key().public_bytes_raw().hex(),
        discord_application_id=str(APPLICATION_ID),
        _env_file=None,  # type: ignore[call-arg]
    )
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.wait_for(fake.ready.wait(), 15)
        gateway = await _gateway_latencies(fake, count, f"http://127.0.0.1:{port}/r/")
        results["gateway_p50_ms"], results["gateway_p99_ms"] = _ms(gateway)
        say(
            f"  gateway bot (INTERACTION_CREATE -> callback): p50 {results['gateway_p50_ms']:.2f} ms, "
            f"p99 {results['gateway_p99_ms']:.2f} ms"
        )
        http = await _http_latencies(f"http://127.0.0.1:{port}", fake, count)
        results["http_p50_ms"], results["http_p99_ms"] = _ms(http)
        say(
            f"  HTTP endpoint (signed POST -> response): p50 {results['http_p50_ms']:.2f} ms, "
            f"p99 {results['http_p99_ms']:.2f} ms"
        )
    finally:
        await runner.cleanup()
        await fake.close()
        data_dir.cleanup()
    results["ratio_p50"] = results["gateway_p50_ms"] / max(results["baseline_p50_ms"], 1e-9)
    results["ratio_p99"] = results["gateway_p99_ms"] / max(results["baseline_p99_ms"], 1e-9)
    say(
        f"  gateway bot / baseline: {results['ratio_p50']:.1f}x at p50, "
        f"{results['ratio_p99']:.1f}x at p99 (Discord's deadline: 3000 ms)"
    )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_INTERACTIONS} interactions")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.quick))
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
