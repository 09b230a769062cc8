"""A browser that cannot make calls learns it at load (issue 14, item 5, first half), in headless
Chromium against ``meetnow serve``: WebRTC is removed by an init script, before the page's code
runs, as in a browser that never had it (WebKitGTK's MiniBrowser has no RTCPeerConnection)."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from ..conftest import ServerProcess
from ..support.browser import browser
from ..support.fake_devices import open_room_with

__all__ = ["browser"]  # the fixture, imported for pytest

pytestmark = pytest.mark.browser

UNSUPPORTED = "This browser cannot make video calls"

# Counts getUserMedia calls (the camera asked for), whatever else the page has.
COUNT_GET_USER_MEDIA = """
(() => {
  window.__getUserMediaCalls = 0;
  const devices = navigator.mediaDevices;
  if (!devices || typeof devices.getUserMedia !== 'function') return;
  const real = devices.getUserMedia.bind(devices);
  devices.getUserMedia = (...args) => { window.__getUserMediaCalls += 1; return real(...args); };
})();
"""
NO_PEER_CONNECTION = """
delete window.RTCPeerConnection;
delete window.webkitRTCPeerConnection;
"""
NO_GET_USER_MEDIA = """
delete MediaDevices.prototype.getUserMedia;
"""

ROUND_TRIP = "async () => (await fetch(location.href, { cache: 'no-store' })).status"


async def get_user_media_calls(page: Page) -> int:
    calls: int = await page.evaluate("() => window.__getUserMediaCalls")
    return calls


@pytest.mark.parametrize(
    ("missing", "script"),
    [("RTCPeerConnection", NO_PEER_CONNECTION), ("getUserMedia", NO_GET_USER_MEDIA)],
)
async def test_a_browser_without_webrtc_is_told_at_load_and_cannot_join(
    browser: Browser, server_process: ServerProcess, missing: str, script: str
) -> None:
    url = f"{server_process.base_url}/r/{await server_process.create_room()}"
    page = await open_room_with(browser, url, script, COUNT_GET_USER_MEDIA)
    alert = page.get_by_role("alert").filter(has_text=UNSUPPORTED)
    # At load: nothing typed, nothing clicked.
    await expect(alert).to_be_visible()
    await expect(alert).to_contain_text("Chrome, Edge, Firefox or Safari")
    await expect(alert).to_have_attribute("data-missing", missing)
    await expect(page.get_by_role("button", name="Join", exact=True)).to_be_disabled()
    await expect(page.get_by_label("Your name")).to_have_value("")
    await expect(page.locator("#prejoin-devices")).to_be_hidden()
    # Enter in the name field submits nothing either: the page stays on the pre-join screen.
    await page.get_by_label("Your name").fill("Ada")
    await page.get_by_label("Your name").press("Enter")
    # The barrier: a request to the server and back, after the load and the Enter. In a browser
    # that can call, the camera is asked for within the load's first tasks (the test below).
    assert await page.evaluate(ROUND_TRIP) == 200
    assert await page.evaluate("() => document.body.dataset.view") == "prejoin"
    assert await get_user_media_calls(page) == 0
    await expect(page.get_by_role("button", name="Join", exact=True)).to_be_disabled()
    assert await page.locator("[data-participant]").count() == 0


async def test_a_browser_with_webrtc_gets_no_such_message(
    browser: Browser, server_process: ServerProcess
) -> None:
    """The test of the test: the same page and probes in a browser that can call say nothing of
    the kind, ask for the camera at once, and join."""
    url = f"{server_process.base_url}/r/{await server_process.create_room()}"
    page = await open_room_with(browser, url, COUNT_GET_USER_MEDIA)
    await page.wait_for_function("() => window.__getUserMediaCalls > 0")
    await expect(page.get_by_role("button", name="Join", exact=True)).to_be_enabled()
    await expect(page.get_by_text(UNSUPPORTED)).to_have_count(0)
    await expect(page.locator("#unsupported")).to_be_hidden()
    await page.get_by_label("Your name").fill("Ada")
    await page.get_by_role("button", name="Join", exact=True).click()
    await expect(page.locator("[data-local]")).to_have_count(1, timeout=15_000)
