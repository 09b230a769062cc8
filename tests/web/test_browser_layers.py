"""Chromium really sends VP8 temporal layers when the page asks for them (``scalabilityMode``),
so the relay can give a slow subscriber fewer frames instead of freezes. Checked on the relay's
own measurement of each publication's layers, in an in-process server."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Browser

from signaling.client import ParticipantClient, PatternVideoTrack
from signaling.forwarding import Publication
from signaling.relay import Relay

from ..conftest import RunningServer
from ..support.browser import browser, join, open_room, wait_playing

__all__ = ["browser"]  # the fixture, imported for pytest

pytestmark = pytest.mark.browser


def video_publications(server: RunningServer, room_id: str) -> dict[str, Publication]:
    relay = server.meetnow.relay
    assert isinstance(relay, Relay), "this test needs the relay in the server's process"
    media = relay.rooms[room_id]
    return {
        owner: publication
        for owner, publications in media.publications.items()
        for publication in publications
        if publication.kind == "video"
    }


async def top_layers(server: RunningServer, room_id: str, wanted: int) -> dict[str, int]:
    """Each video publication's highest temporal layer, once ``wanted`` publications show one
    (or after 10 s): the relay measures layers over one-second windows."""
    layers: dict[str, int] = {}
    for _ in range(100):
        layers = {
            owner: p.layer_rates.top_layer
            for owner, p in video_publications(server, room_id).items()
        }
        if sum(1 for top in layers.values() if top >= 1) >= wanted:
            break
        await asyncio.sleep(0.1)
    return layers


async def test_chromium_publishes_temporal_layers_and_the_relay_sees_them(
    browser: Browser, server: RunningServer
) -> None:
    room_id = server.new_room()
    url = f"{server.base_url}/r/{room_id}"
    pages = [await open_room(browser, url) for _ in range(2)]
    for page, name in zip(pages, ["Ada", "Grace"], strict=True):
        await join(page, name)
    # An aiortc participant publishes plain VP8, without layers: the test of the check below.
    plain = ParticipantClient(server.base_url, room_id, name="plain", video=PatternVideoTrack())
    try:
        await plain.join()
        for page in pages:
            await wait_playing(page, 2)
        layers = await top_layers(server, room_id, wanted=2)
        assert plain.participant_id is not None
        assert layers.pop(plain.participant_id) == 0, "a stream without layers reads as layered"
        assert len(layers) == 2 and all(top >= 1 for top in layers.values()), layers
    finally:
        await plain.close()
