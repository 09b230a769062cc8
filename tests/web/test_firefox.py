"""A mixed call: headless Chromium (Playwright) and headless Firefox (Debian's firefox-esr over
WebDriver BiDi, tests/support/firefox.py) in one room of the real server, each seeing the other's
video play (frames advancing) and hearing the other's audio (packets arriving)."""

from __future__ import annotations

import asyncio
import time

import pytest
from playwright.async_api import Browser

from ..conftest import RunningServer, ServerProcess
from ..support import browser as chromium
from ..support import firefox
from ..support.browser import browser, join, open_room, stop_sending_video
from ..support.firefox import FirefoxPage, group_running, launch_firefox

__all__ = ["browser"]  # the fixture, imported for pytest

pytestmark = pytest.mark.browser

UNSUPPORTED = "cannot make video calls"
SCREEN_UNAVAILABLE = (
    "Your screen cannot be shared right now (nothing to share was found)."
    " The call goes on as before."
)
NOTICE_SAYS = "(text) => Array.from(document.querySelectorAll('.notice__text')).some((n) => n.textContent === text)"
NO_WEBRTC = "window.RTCPeerConnection = undefined;"
# What a screen picker would hand the page, for a headless Firefox that has no screen: a canvas
# that keeps changing. Only the capture source is stood in; the web client's sharing code and
# Firefox's encoder and sender run for real.
CANVAS_SCREEN = """() => {
  navigator.mediaDevices.getDisplayMedia = async () => {
    const canvas = Object.assign(document.createElement('canvas'), { width: 1280, height: 720 });
    const context = canvas.getContext('2d');
    let frame = 0;
    setInterval(() => {
      frame += 1;
      context.fillStyle = `hsl(${(frame * 7) % 360} 60% 50%)`;
      context.fillRect(0, 0, canvas.width, canvas.height);
      context.fillStyle = '#fff';
      context.fillText(`slide ${frame}`, 20 + (frame % 600), 100);
    }, 50);
    return canvas.captureStream(20);
  };
}"""
OWN_ID = "() => document.querySelector('[data-local]:not([data-screen])')?.dataset.participant"
SCREEN_OF = "(id) => document.querySelectorAll(`[data-screen][data-participant='${id}']`).length"
NO_SCREEN = "() => document.querySelectorAll('[data-screen][data-participant]').length === 0"


async def firefox_joins(page: FirefoxPage, name: str) -> None:
    """Type the name and click Join, as a user would on the pre-join screen."""
    await page.wait_for("() => document.querySelector('#join-button') !== null")
    await page.fill("Your name", name)
    await page.click_button("Join")


# Set by room.js in the same synchronous run as its browser check: once it is there, the check has
# said what it will. The load event is no such sign: i18n.js's top-level await lets it fire first.
PAGE_SETTLED = "() => Boolean(document.body.dataset.view)"


async def says_unsupported(page: FirefoxPage) -> bool:
    """Whether the page tells the user this browser cannot make video calls, once its scripts
    have run."""
    await page.wait_for(PAGE_SETTLED)
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


async def test_screens_shared_between_chromium_and_firefox(
    browser: Browser, server_process: ServerProcess
) -> None:
    room_id = await server_process.create_room("Mixed screens")
    url = f"{server_process.base_url}/r/{room_id}"
    ada = await open_room(browser, url)
    await join(ada, "Ada")
    async with launch_firefox() as fox:
        grace = await fox.new_page(url)
        await firefox_joins(grace, "Grace")
        await firefox.wait_playing(grace, 1)
        await chromium.wait_playing(ada, 1)

        # Headless Firefox has no screen to capture (its fake devices are cameras and
        # microphones only): getDisplayMedia fails with NotFoundError. Grace is told so, and
        # her camera keeps playing at Ada's.
        await grace.click_button("Share screen")
        await grace.wait_for(NOTICE_SAYS, SCREEN_UNAVAILABLE)
        await chromium.wait_playing(ada, 1)

        # Chromium shares its (fake) screen: Firefox shows it as a screen tile of Ada's, its frames
        # advancing next to her camera's. Waited for, not watched over a stretch: on a loaded
        # machine the publisher's bandwidth estimate dips for seconds after a share starts.
        ada_id = await ada.evaluate(OWN_ID)
        await ada.get_by_role("button", name="Share screen", exact=True).click()
        await grace.wait_for(SCREEN_OF, ada_id)
        await firefox.wait_playing(grace, 2, timeout_s=90.0)
        names = {tile.name for tile in await firefox.remote_frames(grace)}
        assert names == {"Ada", "Ada's screen"}, names
        await ada.get_by_role("button", name="Stop sharing", exact=True).click()
        await grace.wait_for(NO_SCREEN)
        await firefox.wait_playing(grace, 1, timeout_s=60.0)

        # Firefox shares (a stand-in screen, see CANVAS_SCREEN): Chromium shows Grace's screen
        # tile, frames advancing next to her camera's; stopping removes it there.
        grace_id = await grace.call(OWN_ID)
        await grace.call(CANVAS_SCREEN)
        await grace.click_button("Share screen")
        await ada.wait_for_function(SCREEN_OF, arg=grace_id, timeout=30_000)
        await chromium.wait_playing(ada, 2, timeout_ms=90_000)
        names = {tile.name for tile in await chromium.remote_frames(ada)}
        assert names == {"Grace", "Grace's screen"}, names
        await grace.click_button("Stop sharing")
        await ada.wait_for_function(NO_SCREEN, timeout=30_000)
        await chromium.wait_playing(ada, 1, timeout_ms=60_000)


async def test_firefox_is_not_told_it_cannot_call_but_a_firefox_without_webrtc_is(
    server: RunningServer,
) -> None:
    url = f"{server.base_url}/r/{server.new_room()}"
    async with launch_firefox() as fox:
        # Each answer is read once the page's scripts have run (PAGE_SETTLED).
        page = await fox.new_page(url)
        assert not await says_unsupported(page)
        # The check can fail: the same Firefox with RTCPeerConnection taken away is told so at
        # load, before any click.
        without_webrtc = await fox.new_page(url, preload=NO_WEBRTC)
        assert await says_unsupported(without_webrtc)
    # The driver leaves nothing behind: no browser process, no profile.
    assert not fox.profile.exists()
    assert not group_running(fox.process.pid)


def test_a_missing_firefox_skips_here_but_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(firefox, "FIREFOX", "/nonexistent/firefox-esr")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        firefox.firefox_or_skip()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="missing in CI"):
        firefox.firefox_or_skip()
