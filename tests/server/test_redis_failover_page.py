"""A browser page in a call whose node dies (``kill -9``) comes back by itself (issue 16, many
nodes): two real nodes behind Caddy (docs/deploy.md's setup), the page and a Python peer in a
call on node A; A is killed, no drain, no 1012 from it. The room's claim expires within
:data:`~signaling.redis_registry.NODE_TTL_SECONDS`, the page's reconnecting websocket reaches B
through the balancer, B claims the room, and the page plays the peer's video again, nobody
clicking anything and no page left on the "You are not in the meeting" screen.

That last check is a new kind (a screen that must stay hidden): its test of the test shows a
page whose host ended the meeting and sees the checker report it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from signaling.client import ParticipantClient, PatternVideoTrack
from signaling.redis_registry import NODE_TTL_SECONDS

from ..support.balancer import balancer_port, caddy_in_front
from ..support.browser import NetworkLog, browser, join, open_room, wait_playing
from ..support.redis_server import RedisServer, running_redis
from ..support.serve_process import meetnow_serve
from .test_redis_nodes import (
    claim_of,
    create_room,
    join_through,
    node_settings,
    receives_frames,
    two_nodes,
)

__all__ = ["browser"]

KILL_SECONDS = 30.0

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


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.mark.browser
async def test_a_page_in_a_call_on_a_killed_node_plays_again_through_the_other(
    browser: Browser, redis_server: RedisServer, tmp_path: Path
) -> None:
    """``kill -9`` of the room's node A under a Chromium page (through Caddy) and a Python peer:
    the page reconnects by itself through Caddy to B once A's claim has expired, B claims the
    room, the page plays the peer's video again (the peer back through B by its session) and
    the peer receives the page's; the page never saw ``room_closed`` nor the ended screen."""
    port = balancer_port()
    public = {"MEETNOW_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    with two_nodes(tmp_path, MEETNOW_REDIS_URL=redis_server.url, **public) as (node_a, node_b):
        upstreams = [node.base_url.removeprefix("http://") for node in (node_a, node_b)]
        with caddy_in_front(tmp_path / "caddy", port, upstreams) as caddy:
            status, body = await create_room(node_b, "198.51.100.42")
            assert status == 201, body
            room_id = body["id"]
            network = NetworkLog()
            page = await open_room(browser, f"{caddy.url}/r/{room_id}", network=network)
            peer = ParticipantClient(node_a.base_url, room_id, "Peer", video=PatternVideoTrack())
            back: ParticipantClient | None = None
            try:
                await join(page, "Page")
                await peer.join(timeout=30)
                await wait_playing(page, 1, timeout_ms=90_000)  # a loaded machine
                claimed_by_a = await claim_of(redis_server, room_id)
                assert claimed_by_a is not None

                node_a.process.kill()
                node_a.process.wait(10)
                assert await peer.wait_closed(timeout=KILL_SECONDS) != 1012  # no drain here
                back = await join_through(node_b, room_id, "Peer", peer.session)
                await wait_playing(page, 1, timeout_ms=int((NODE_TTL_SECONDS + 60) * 1000))
                page_id = next(iter(back.participants), None)
                assert page_id is not None, "the page is not in the call on B"
                await receives_frames(back, page_id)
                claimed_by_b = await claim_of(redis_server, room_id)
                assert claimed_by_b is not None and claimed_by_b != claimed_by_a
                sockets = [url for url in network.urls if "/ws/" in url]
                assert len(sockets) >= 2, "the page never reconnected"
                assert not any(m.get("type") == "room_closed" for m in network.received_messages)
                assert await ended_screen(page) is None
            finally:
                if back is not None:
                    await back.close()
                await peer.close()
                await page.context.close()


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
