"""A mixed call: headless Chromium (Playwright) and headless Firefox (Debian's firefox-esr over
WebDriver BiDi, tests/support/firefox.py) in one room of the real server, each seeing the other's
video play (frames advancing) and hearing the other's audio (packets arriving)."""

from __future__ import annotations

import asyncio
import time

import pytest
from playwright.async_api import Browser

from ..conftest import ServerProcess
from ..support import browser as chromium
from ..support import firefox
from ..support.browser import browser, join, open_room, stop_sending_video
from ..support.firefox import FirefoxPage, launch_firefox

__all__ = ["browser"]  # the fixture, imported for pytest

pytestmark = pytest.mark.browser

UNSUPPORTED = "cannot make video calls"


async def firefox_joins(page: FirefoxPage, name: str) -> None:
    """Type the name and click Join, as a user would on the pre-join screen."""
    await page.wait_for("() => document.querySelector('#join-button') !== null")
    await page.fill("Your name", name)
    await page.click_button("Join")


async def says_unsupported(page: FirefoxPage) -> bool:
    """Whether the page tells the user this browser cannot make video calls."""
    text: str = await page.call("() => document.body.innerText")
    return UNSUPPORTED in text


async def test_chromium_and_firefox_see_and_hear_each_other(
    browser: Browser, server_process: ServerProcess
) -> None:
    room_id = await server_process.create_room("Mixed call")
    url = f"{server_process.base_url}/r/{room_id}"
    ada = await open_room(browser, url)
    await join(ada, "Ada")

    started = time.monotonic()
    async with launch_firefox() as fox:
        launched = time.monotonic()
        grace = await fox.new_page(url)
        # A browser that can make calls is told nothing of the kind, at load.
        assert not await says_unsupported(grace)
        await firefox_joins(grace, "Grace")
        await firefox.wait_playing(grace, 1)
        playing = time.monotonic()
        print(
            f"\nFirefox start {launched - started:.1f} s;"
            f" load + join -> Chromium's video playing {playing - launched:.1f} s"
        )
        await chromium.wait_playing(ada, 1)

        # Five seconds of call: each keeps presenting the other's frames and hears the other.
        watching = asyncio.gather(chromium.watch_videos(ada, 5.0), firefox.watch_videos(grace, 5.0))
        hearing = asyncio.gather(
            chromium.wait_hearing(ada, {"Grace"}), firefox.wait_hearing(grace, {"Ada"})
        )
        (ada_sees, grace_sees), _ = await asyncio.gather(watching, hearing)
        assert ada_sees.verdicts == {"Grace": "playing"}, ada_sees
        assert grace_sees.verdicts == {"Ada": "playing"}, grace_sees
        assert not await says_unsupported(grace)

        # The check in Firefox can fail: Chromium stops sending video and Firefox calls its tile
        # frozen, while Ada's audio still arrives (the page still receives: only video stopped).
        await stop_sending_video(ada)
        frozen, still_hearing = await asyncio.gather(
            firefox.watch_videos(grace, 3.0), firefox.wait_hearing(grace, {"Ada"})
        )
        assert frozen.verdicts == {"Ada": "frozen"}, frozen
        assert still_hearing["Ada"].heard
        assert not await grace.call(
            chromium.PLAYING_NOW, [1, chromium.FRAMES_PER_WINDOW, chromium.WINDOW_MS]
        )
