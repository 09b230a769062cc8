"""A browser page in a call whose node goes away comes back by itself (issue 16, many nodes):
two real nodes behind Caddy (docs/deploy.md's setup), the page and a Python peer in a call on
node A. A is killed (``kill -9``: no drain, no 1012 from it; the room's claim expires within
:data:`~signaling.redis_registry.NODE_TTL_SECONDS`) or told to stop (SIGTERM: it lets go of its
claims and closes the pages' websockets with 1012). Either way the page's reconnecting websocket
reaches B through the balancer, B claims the room, and the page plays the peer's video again,
nobody clicking anything, no ``room_closed`` and no page left on the "You are not in the
meeting" screen.

That last check is a new kind (a screen that must stay hidden): its test of the test shows a
page whose host ended the meeting and sees the checker report it."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from signaling.client import ParticipantClient, PatternVideoTrack
from signaling.redis_registry import NODE_TTL_SECONDS

from ..support.balancer import balancer_port, caddy_in_front
from ..support.browser import NetworkLog, browser, join, open_room, wait_playing
from ..support.redis_server import RedisServer
from ..support.serve_process import ServeProcess, meetnow_serve
from .test_redis_nodes import (
    claim_of,
    create_room,
    join_through,
    node_settings,
    receives_frames,
    two_nodes,
)

__all__ = ["browser"]

GONE_SECONDS = 30.0
"""How long the peer's websocket on A may take to close once A is killed or told to stop."""
BACK_SECONDS = NODE_TTL_SECONDS + 60.0
"""How long the page may take to be back in the call on B (claim expiry, backoff, ICE)."""

ENDED_TEXT = """() => {
  const screen = document.getElementById("ended");
  if (screen === null || screen.hidden) return null;
  return document.getElementById("ended-text")?.textContent ?? "";
}"""


async def ended_screen(page: Page) -> str | None:
    """The ended screen's text when the page shows it ("You are not in the meeting": ended,
    closed, not found...), None while it is hidden."""
    text: str | None = await page.evaluate(ENDED_TEXT)
    return text


@dataclass
class PageCall:
    """A Chromium page (through Caddy) and a Python peer in a call on node A."""

    node_a: ServeProcess
    node_b: ServeProcess
    room_id: str
    page: Page
    peer: ParticipantClient
    network: NetworkLog
    back: ParticipantClient | None = None
    """The peer again, through B by its session, once A is gone."""


@contextlib.asynccontextmanager
async def page_in_a_call_on_a(
    browser: Browser, redis_server: RedisServer, tmp_path: Path, client_ip: str
) -> AsyncIterator[PageCall]:
    port = balancer_port()
    public = {"MEETNOW_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    with two_nodes(tmp_path, MEETNOW_REDIS_URL=redis_server.url, **public) as (node_a, node_b):
        upstreams = [node.base_url.removeprefix("http://") for node in (node_a, node_b)]
        with caddy_in_front(tmp_path / "caddy", port, upstreams) as caddy:
            status, body = await create_room(node_b, client_ip)
            assert status == 201, body
            room_id = body["id"]
            network = NetworkLog()
            page = await open_room(browser, f"{caddy.url}/r/{room_id}", network=network)
            peer = ParticipantClient(node_a.base_url, room_id, "Peer", video=PatternVideoTrack())
            call = PageCall(node_a, node_b, room_id, page, peer, network)
            try:
                await join(page, "Page")
                await peer.join(timeout=30)
                await wait_playing(page, 1, timeout_ms=90_000)  # a loaded machine
                yield call
            finally:
                if call.back is not None:
                    await call.back.close()
                await peer.close()
                await page.context.close()


async def first_other(client: ParticipantClient, timeout_s: float) -> str:
    """The id of the first other participant ``client`` sees in its call, once there is one."""
    deadline = time.monotonic() + timeout_s
    while not client.participants:
        assert time.monotonic() < deadline, f"nobody else in the call within {timeout_s:.0f} s"
        await asyncio.sleep(0.1)
    return next(iter(client.participants))


async def plays_again_through_b(call: PageCall) -> None:
    """The peer joins again through B by its session; the page comes back into that call by
    itself and plays the peer's video, and the peer receives the page's. The page's old tile
    may still hold frames from before: its video counts only once the page is in B's call."""
    call.back = await join_through(call.node_b, call.room_id, "Peer", call.peer.session)
    page_id = await first_other(call.back, BACK_SECONDS)
    await wait_playing(call.page, 1, timeout_ms=int(BACK_SECONDS * 1000))
    await receives_frames(call.back, page_id)
    sockets = [url for url in call.network.urls if "/ws/" in url]
    assert len(sockets) >= 2, "the page never reconnected"
    assert not any(m.get("type") == "room_closed" for m in call.network.received_messages)
    assert await ended_screen(call.page) is None


@pytest.mark.browser
async def test_a_page_in_a_call_on_a_killed_node_plays_again_through_the_other(
    browser: Browser, redis_server: RedisServer, tmp_path: Path
) -> None:
    """``kill -9`` of the room's node A: the page reconnects through Caddy to B once A's claim
    has expired, and B, which claims the room, holds the call."""
    async with page_in_a_call_on_a(browser, redis_server, tmp_path, "198.51.100.42") as call:
        claimed_by_a = await claim_of(redis_server, call.room_id)
        assert claimed_by_a is not None
        call.node_a.process.kill()
        call.node_a.process.wait(10)
        assert await call.peer.wait_closed(timeout=GONE_SECONDS) != 1012  # no drain here
        await plays_again_through_b(call)
        claimed_by_b = await claim_of(redis_server, call.room_id)
        assert claimed_by_b is not None and claimed_by_b != claimed_by_a


@pytest.mark.browser
async def test_a_page_in_a_call_on_a_draining_node_plays_again_through_the_other(
    browser: Browser, redis_server: RedisServer, tmp_path: Path
) -> None:
    """SIGTERM to the room's node A: it closes the sockets with 1012 "service restart" and exits
    cleanly; the page reconnects to the same URL, Caddy sends it to B, and B claims the room."""
    async with page_in_a_call_on_a(browser, redis_server, tmp_path, "198.51.100.41") as call:
        call.node_a.process.send_signal(signal.SIGTERM)
        assert await call.peer.wait_closed(timeout=GONE_SECONDS) == 1012
        assert await asyncio.to_thread(call.node_a.process.wait, GONE_SECONDS) == 0
        await plays_again_through_b(call)


@pytest.mark.browser
async def test_the_test_a_page_whose_meeting_ended_is_reported(
    browser: Browser, tmp_path: Path
) -> None:
    """The checker on a bad case: one node, a page in a call, its host ends the meeting; the
    checker reports the ended screen (while the page was in the call it reported nothing)."""
    with meetnow_serve(tmp_path, **node_settings(0)) as node:
        status, body = await create_room(node, "198.51.100.43")
        assert status == 201, body
        room_id, host_token = body["id"], body["host_url"].split("#host=", 1)[1]
        host = ParticipantClient(node.base_url, room_id, "Host", host_token=host_token)
        page = await open_room(browser, f"{node.base_url}/r/{room_id}")
        try:
            await host.join(timeout=30)
            await join(page, "Page")
            await page.wait_for_function("() => document.getElementById('call')?.hidden === false")
            assert await ended_screen(page) is None
            await host.send({"type": "end_meeting"})
            await page.wait_for_function(
                "() => document.getElementById('ended')?.hidden === false", timeout=30_000
            )
            assert await ended_screen(page) is not None
        finally:
            await host.close()
            await page.context.close()
