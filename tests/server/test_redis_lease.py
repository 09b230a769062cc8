"""A lease on Redis (``signaling.redis_lease``, what ``ChatPort.single_holder`` gives Discord's
gateway with several nodes): one holder at a time, kept while its holder lives, and taken over
by a waiting node within ``LEASE_TTL_SECONDS + LEASE_RENEW_SECONDS`` after ``kill -9`` of the
holder (a real process on a real ``redis-server``)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from signaling.redis_lease import LEASE_RENEW_SECONDS, LEASE_TTL_SECONDS, hold_lease
from signaling.redis_store import connect, text_of

from ..support.redis_server import running_redis

HOLDER = """
import asyncio, sys
from signaling.redis_lease import hold_lease
from signaling.redis_store import connect

async def main() -> None:
    client = connect(sys.argv[1])
    async with hold_lease(client, "meetnow:lease:test", "node-a"):
        print("held", flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


async def test_a_lease_is_single_and_taken_over_when_its_holder_dies(tmp_path: Path) -> None:
    with running_redis(tmp_path / "redis") as redis_server:
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, redis_server.url], stdout=subprocess.PIPE, text=True
        )
        client = connect(redis_server.url)
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            taken = asyncio.Event()

            async def node_b() -> None:
                async with hold_lease(client, "meetnow:lease:test", "node-b"):
                    taken.set()
                    await asyncio.Event().wait()

            waiting = asyncio.ensure_future(node_b())
            # Kept while its holder lives: longer than a TTL later, still A's (renewed).
            started = time.monotonic()
            while time.monotonic() - started < LEASE_TTL_SECONDS + 1:
                value = await client.get("meetnow:lease:test")
                assert value is not None and text_of(value) == "node-a"
                assert not taken.is_set()
                await asyncio.sleep(0.2)
            holder.kill()
            holder.wait(10)
            killed_at = time.monotonic()
            await asyncio.wait_for(taken.wait(), LEASE_TTL_SECONDS + LEASE_RENEW_SECONDS + 5)
            took = time.monotonic() - killed_at
            assert took <= LEASE_TTL_SECONDS + LEASE_RENEW_SECONDS + 1, took
            value = await client.get("meetnow:lease:test")
            assert value is not None and text_of(value) == "node-b"
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
            # Let go on exit: the next node need not wait for the TTL.
            assert await client.get("meetnow:lease:test") is None
        finally:
            holder.kill()
            await client.aclose()
