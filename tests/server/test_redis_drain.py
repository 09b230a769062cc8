"""A node told to stop (SIGTERM) drains (issue 16, many nodes): it lets go of its rooms' claims
at once, closes its pages' websockets with 1012 (never ``room_closed``), and they come back by
themselves through another node, which claims the room. A rolling deploy ends no meeting.

The test of the test stops the node with SIGKILL instead: no drain. Its page sees its websocket
drop (not 1012) while the claim is still the dead node's, and the claim lasts until it expires
(:data:`~signaling.redis_registry.NODE_TTL_SECONDS`); the checks say so, and the time from the
signal to a free claim is measured for both."""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from signaling.client import ParticipantClient
from signaling.redis_registry import NODE_TTL_SECONDS

from ..support.browser import browser
from ..support.redis_server import RedisServer
from ..support.serve_process import ServeProcess
from .test_redis_nodes import ada_and_bea, claim_of, meet_again_through, two_nodes

__all__ = ["browser"]

STOP_SECONDS = 30.0


@dataclass
class Stopped:
    """What the room's node's stop looked like from outside."""

    close_codes: tuple[int | None, int | None]
    """How Ada's (on the node) and Bea's (forwarded through the other node) websockets closed."""
    claim_at_close: str | None
    """The room's claim when Ada's websocket closed (None: let go)."""
    seconds_to_free_claim: float
    """From the signal to the claim no longer naming the stopped node."""
    room_closed: bool
    """Whether either was told the room closed."""


async def stop_rooms_node(
    redis_server: RedisServer,
    room_node: ServeProcess,
    room_id: str,
    clients: tuple[ParticipantClient, ParticipantClient],
    how: signal.Signals,
) -> Stopped:
    """Send ``how`` to the room's node with Ada on it and Bea forwarded to it."""
    ada, bea = clients
    claimed = await claim_of(redis_server, room_id)
    assert claimed is not None
    sent_at = time.monotonic()
    room_node.process.send_signal(how)
    ada_code = await ada.wait_closed(timeout=STOP_SECONDS)
    claim_at_close = await claim_of(redis_server, room_id)
    while await claim_of(redis_server, room_id) == claimed:
        assert time.monotonic() - sent_at < STOP_SECONDS, "the claim never let go"
        await asyncio.sleep(0.01)
    freed = time.monotonic() - sent_at
    bea_code = await bea.wait_closed(timeout=NODE_TTL_SECONDS + STOP_SECONDS)
    told = any(m.get("type") == "room_closed" for c in clients for m in c.messages)
    return Stopped((ada_code, bea_code), claim_at_close, freed, told)


async def test_sigterm_drains_the_call_to_the_other_node(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """SIGTERM to the room's node: both websockets close with 1012 and nobody is told the room
    closed; the claim is let go before the pages are sent away; both join again through B by
    their sessions and see each other's video on B's ICE ports."""
    with two_nodes(tmp_path, MEETNOW_REDIS_URL=redis_server.url) as (node_a, node_b):
        async with ada_and_bea(node_a, node_b, "198.51.100.40") as call:
            stopped = await stop_rooms_node(
                redis_server, node_a, call.room_id, (call.ada, call.bea), signal.SIGTERM
            )
            print(f"SIGTERM: claim free after {stopped.seconds_to_free_claim:.3f} s")
            assert stopped.close_codes == (1012, 1012)
            assert stopped.claim_at_close is None  # let go before the page was sent away
            assert not stopped.room_closed
            assert node_a.process.wait(STOP_SECONDS) == 0  # and then it exits, cleanly
            await meet_again_through(node_b, call)


async def test_the_test_sigkill_is_no_drain(redis_server: RedisServer, tmp_path: Path) -> None:
    """The same stop by SIGKILL: Ada's websocket just drops (no 1012), the claim still names the
    dead node when it does, and it is freed only by its expiry."""
    with two_nodes(tmp_path, MEETNOW_REDIS_URL=redis_server.url) as (node_a, node_b):
        async with ada_and_bea(node_a, node_b, "198.51.100.39") as call:
            stopped = await stop_rooms_node(
                redis_server, node_a, call.room_id, (call.ada, call.bea), signal.SIGKILL
            )
            print(f"SIGKILL: claim free after {stopped.seconds_to_free_claim:.3f} s")
            assert stopped.close_codes[0] != 1012
            assert stopped.claim_at_close is not None  # what the drain test rules out
            assert stopped.seconds_to_free_claim > NODE_TTL_SECONDS / 2
