"""Many nodes on Redis (issue 16): what forwarding, failover and draining cost, with real
``meetnow serve`` nodes on a real ``redis-server`` and aiortc clients: ``meetnow loadtest``'s
participants (a pre-encoded loop sent, what arrives counted off the socket with a browser's
feedback, nothing encoded or decoded), so 12 of them in this one process on a small machine
measure the nodes, not the clients' codecs.

    .venv/bin/python -m benchmarks.multinode --smoke    # one of each, seconds: does it work
    .venv/bin/python -m benchmarks.multinode --quick    # 3 joins, 2 kills, a drain of 2 x 2
    .venv/bin/python -m benchmarks.multinode            # 10 joins each, 10 kills, 3 rooms of 4

Figures (printed, never asserted):

- ``multinode_join_own_node_ms`` / ``multinode_join_forwarded_ms`` (p50, p95): a client's
  ``join`` to the first packet of video from the one already there, entering through the room's own
  node vs through the other node (its signaling forwarded over Redis);
- ``multinode_failover_ms`` (p50, p95): ``kill -9`` of the room's node to both clients (one
  forwarded) receiving each other's video again through the survivor;
- ``multinode_drain_ms`` (p95, max): SIGTERM to a node holding rooms of people to every one of
  them receiving video from each of the others again on the other node.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from signaling.client import ParticipantClient
from signaling.synthetic_media import (
    EncodedAudioTrack,
    EncodedMedia,
    EncodedVideoTrack,
    encode_media,
)

from .common import ServerProcess, free_port, percentile, say, start_server

__all__ = ["MODES", "main", "run"]

ICE_PORTS_PER_NODE = 60
DEADLINE = 60.0


@dataclass(frozen=True)
class Mode:
    joins: int
    kills: int
    rooms: int
    people: int


MODES = {
    "smoke": Mode(joins=1, kills=1, rooms=1, people=2),
    "quick": Mode(joins=3, kills=2, rooms=2, people=2),
    "full": Mode(joins=10, kills=10, rooms=3, people=4),
}


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A ``redis-server`` of its own on a free port, persisting nothing; its URL."""
    directory = Path(tempfile.mkdtemp(prefix="meetnow-redis-"))
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while (
            subprocess.run(
                ["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True
            ).stdout.strip()
            != "PONG"
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


_next_ports = [free_port() % 20000 + 30000]


def start_node(redis_url: str) -> ServerProcess:
    """A node with ICE ports of its own (several nodes on one machine must not share them)."""
    first = _next_ports[0]
    _next_ports[0] += ICE_PORTS_PER_NODE
    return start_server(
        env={
            "MEETNOW_REDIS_URL": redis_url,
            "MEETNOW_RELAY_WORKERS": "1",  # as the multi-node tests run it
            "MEETNOW_ICE_PORT_RANGE": f"{first}-{first + ICE_PORTS_PER_NODE - 1}",
        }
    )


@functools.cache
def media() -> EncodedMedia:
    """The loop every participant sends (encoded once)."""
    return encode_media()


def new_room(node: ServerProcess) -> str:
    return node.create_room().rsplit("/", 1)[1]


async def join_until_in(node: ServerProcess, room_id: str, name: str, session: str | None = None
                        ) -> ParticipantClient:  # fmt: skip
    """Join through ``node`` (again, by ``session``), retrying while the room's claim still
    names a node that is gone."""
    deadline = time.monotonic() + DEADLINE
    while True:
        client = ParticipantClient(
            node.base_url,
            room_id,
            name,
            audio=EncodedAudioTrack(media()),
            video=EncodedVideoTrack(media()),
            decode=False,
            count_encrypted=True,
        )
        if session is not None:
            client.session = session
        try:
            await client.join(timeout=10)
            return client
        except Exception:
            await client.close()
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def sees_everyone(client: ParticipantClient, others: int) -> None:
    """Wait until ``client`` receives video from ``others`` participants."""
    deadline = time.monotonic() + DEADLINE
    while True:
        seen = [
            pid
            for pid in client.participants
            if pid != client.participant_id
            and (stream := client.video_from(pid)) is not None
            and stream.first_frame_at is not None
        ]
        if len(seen) >= others:
            return
        if time.monotonic() > deadline:
            listed = len([pid for pid in client.participants if pid != client.participant_id])
            raise TimeoutError(
                f"saw {len(seen)} of {others} within {DEADLINE:.0f} s "
                f"({listed} others listed in its room)"
            )
        await asyncio.sleep(0.01)


async def join_to_first_frame(node: ServerProcess, room_id: str) -> float:
    started = time.monotonic()
    client = await join_until_in(node, room_id, "Joiner")
    try:
        await sees_everyone(client, 1)
        return (time.monotonic() - started) * 1000
    finally:
        await client.close()


async def measure_joins(redis_url: str, mode: Mode) -> dict[str, list[float]]:
    node_a, node_b = start_node(redis_url), start_node(redis_url)
    try:
        room_id = new_room(node_b)
        anchor = await join_until_in(node_a, room_id, "Anchor")  # node A claims the room
        try:
            own = [await join_to_first_frame(node_a, room_id) for _ in range(mode.joins)]
            forwarded = [await join_to_first_frame(node_b, room_id) for _ in range(mode.joins)]
        finally:
            await anchor.close()
        return {"multinode_join_own_node_ms": own, "multinode_join_forwarded_ms": forwarded}
    finally:
        node_a.stop()
        node_b.stop()


async def one_failover(redis_url: str, survivor: ServerProcess) -> float:
    doomed = start_node(redis_url)
    clients: list[ParticipantClient] = []
    try:
        room_id = new_room(survivor)
        ada = await join_until_in(doomed, room_id, "Ada")
        bea = await join_until_in(survivor, room_id, "Bea")
        clients += [ada, bea]
        await sees_everyone(ada, 1)
        await sees_everyone(bea, 1)
        killed_at = time.monotonic()
        doomed.process.send_signal(signal.SIGKILL)
        await bea.wait_closed(DEADLINE)
        back = [
            await join_until_in(survivor, room_id, "Bea", bea.session),
            await join_until_in(survivor, room_id, "Ada", ada.session),
        ]
        clients += back
        await asyncio.gather(*(sees_everyone(client, 1) for client in back))
        return (time.monotonic() - killed_at) * 1000
    finally:
        for client in clients:
            await client.close()
        doomed.stop()


async def measure_failovers(redis_url: str, mode: Mode) -> dict[str, list[float]]:
    survivor = start_node(redis_url)
    try:
        return {"multinode_failover_ms": [await one_failover(redis_url, survivor)
                                          for _ in range(mode.kills)]}  # fmt: skip
    finally:
        survivor.stop()


async def back_elsewhere(client: ParticipantClient, other: ServerProcess, room_id: str,
                         others: int, since: float,
                         joined: list[ParticipantClient]) -> float:  # fmt: skip
    """Milliseconds from ``since`` until ``client`` is back in its call through ``other``
    (the new client goes into ``joined`` at once, so that it is closed whatever happens)."""
    await client.wait_closed(DEADLINE)
    again = await join_until_in(other, room_id, "Again", client.session)
    joined.append(again)
    await sees_everyone(again, others)
    return (time.monotonic() - since) * 1000


async def measure_drain(redis_url: str, mode: Mode) -> dict[str, list[float]]:
    draining, other = start_node(redis_url), start_node(redis_url)
    clients: list[tuple[str, ParticipantClient]] = []
    again: list[ParticipantClient] = []
    try:
        for _ in range(mode.rooms):
            room_id = new_room(other)
            for index in range(mode.people):
                clients.append((room_id, await join_until_in(draining, room_id, f"P{index}")))
        await asyncio.gather(*(sees_everyone(c, mode.people - 1) for _, c in clients))
        stopped_at = time.monotonic()
        draining.process.send_signal(signal.SIGTERM)
        waits = [
            asyncio.ensure_future(
                back_elsewhere(c, other, room, mode.people - 1, stopped_at, again)
            )
            for room, c in clients
        ]
        try:
            return {"multinode_drain_ms": list(await asyncio.gather(*waits))}
        finally:  # one failed: the others stop before their clients are closed below
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
    finally:
        for client in [*again, *(c for _, c in clients)]:
            await client.close()
        draining.stop()
        other.stop()


async def run(mode_name: str) -> dict[str, list[float]]:
    mode = MODES[mode_name]
    figures: dict[str, list[float]] = {}
    with redis_server() as url:
        figures |= await measure_joins(url, mode)
        figures |= await measure_failovers(url, mode)
        figures |= await measure_drain(url, mode)
    for name, values in figures.items():
        say(
            f"{name}: p50 {percentile(values, 0.5):.0f} ms, p95 {percentile(values, 0.95):.0f} ms,"
            f" max {max(values):.0f} ms over {len(values)}"
        )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.multinode", description=__doc__)
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--smoke", action="store_true", help="one of each, to see it works")
    modes.add_argument("--quick", action="store_true", help="a short run")
    args = parser.parse_args(argv)
    asyncio.run(run("smoke" if args.smoke else "quick" if args.quick else "full"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
