"""Choosing devices (issue 14, item 3), end to end in headless Chromium against ``meetnow serve``.

Chromium's fake devices give one camera, three microphones and three speakers; a second camera
(a magenta canvas) and a camera that cannot be opened come from tests/support/fake_devices.js,
which also simulates unplugging (the track ends, ``devicechange`` fires without the device).
"""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from ..conftest import ServerProcess
from ..support.browser import browser, join, page_now, remote_frames, video_verdict, wait_playing
from ..support.fake_devices import (
    BUSY_CAMERA,
    CANVAS_CAMERA,
    CHROMIUM_CAMERA,
    FAKE_DEVICES,
    MAGENTA,
    call_connections_made,
    near,
    offers_answered,
    open_room_with,
    sent_label,
    sent_tracks,
    tile_colour,
    wait_tile_colour,
)

__all__ = ["browser"]  # the fixture, imported for pytest

pytestmark = pytest.mark.browser

NO_SET_SINK_ID = "delete HTMLMediaElement.prototype.setSinkId;"
VIDEO_NOTICE = '[data-notice="device-videoinput"] .notice__text'
PREVIEW_TRACK = (
    "() => document.getElementById('preview').srcObject?.getVideoTracks()[0]?.label ?? null"
)


async def selected_text(page: Page, label: str) -> str:
    """The text of the option selected in the pre-join screen's select ``label``."""
    text: str = (
        await page.locator("#prejoin")
        .get_by_label(label, exact=True)
        .evaluate("(select) => select.selectedOptions[0]?.textContent ?? ''")
    )
    return text


def in_call(page: Page, label: str) -> Locator:
    """The call's select ``label`` (the pre-join screen has its own)."""
    return page.locator("#call").get_by_label(label, exact=True)


async def open_devices_menu(page: Page) -> None:
    await page.locator("#devices-menu > summary").click()
    await expect(in_call(page, "Camera")).to_be_visible()


async def test_prejoin_selects_and_the_choice_survives_a_reload(
    browser: Browser, server_process: ServerProcess
) -> None:
    room_id = await server_process.create_room()
    url = f"{server_process.base_url}/r/{room_id}"
    page = await open_room_with(browser, url, FAKE_DEVICES)
    prejoin = page.locator("#prejoin")
    camera = prejoin.get_by_label("Camera", exact=True)
    microphone = prejoin.get_by_label("Microphone", exact=True)
    speaker = prejoin.get_by_label("Speaker", exact=True)
    for select in (camera, microphone, speaker):
        await expect(select).to_be_visible()
        assert await select.evaluate("(element) => element.tagName") == "SELECT"
    # Listed once the browser allows the devices: labels as text (the busy camera's markup too).
    await expect(camera.locator("option")).to_have_text(
        [CHROMIUM_CAMERA, CANVAS_CAMERA, BUSY_CAMERA], timeout=10_000
    )
    assert await page.locator("#prejoin-devices i").count() == 0
    await expect(microphone.locator("option")).to_have_count(3)
    await expect(speaker.locator("option")).to_have_count(3)
    # The list can be filled before the preview's stream is attached: wait for it, never read once.
    await page.wait_for_function(f"() => ({PREVIEW_TRACK})() === {CHROMIUM_CAMERA!r}")

    await camera.select_option(label=CANVAS_CAMERA)
    await page.wait_for_function(f"() => ({PREVIEW_TRACK})() === {CANVAS_CAMERA!r}")
    await microphone.select_option(label="Fake Audio Input 2")
    await page.wait_for_function(
        "() => document.getElementById('preview').srcObject?.getAudioTracks()[0]?.label"
        " === 'Fake Audio Input 2'"
    )

    await page.reload()
    await page.wait_for_function(f"() => ({PREVIEW_TRACK})() === {CANVAS_CAMERA!r}")
    await expect(prejoin.get_by_label("Camera", exact=True)).to_have_value(
        await page.evaluate("() => window.__fakeDevices.CANVAS_ID")
    )
    assert await selected_text(page, "Microphone") == "Fake Audio Input 2"

    # The check can fail: another browser (fresh storage) starts on Chromium's own camera. That
    # one cannot route audio output (no setSinkId): it offers no Speaker select.
    other = await open_room_with(browser, url, FAKE_DEVICES, NO_SET_SINK_ID)
    await other.wait_for_function(f"() => ({PREVIEW_TRACK})() === {CHROMIUM_CAMERA!r}")
    assert await selected_text(other, "Camera") == CHROMIUM_CAMERA
    await expect(other.locator("#prejoin").get_by_label("Microphone", exact=True)).to_be_visible()
    await expect(other.get_by_label("Speaker", exact=True)).to_have_count(0)

    # A remembered device that is gone, or a damaged entry, falls back to the default quietly.
    await page.evaluate(
        "() => { localStorage.setItem('meetnow.device.videoinput',"
        " JSON.stringify({deviceId: 'unplugged-long-ago', label: 'Old camera'}));"
        " localStorage.setItem('meetnow.device.audioinput', '{not json'); }"
    )
    await page.reload()
    await page.wait_for_function(f"() => ({PREVIEW_TRACK})() === {CHROMIUM_CAMERA!r}")
    await expect(page.locator("[data-notice]")).to_have_count(0)


async def test_switching_devices_in_the_call_without_renegotiation(
    browser: Browser, server_process: ServerProcess
) -> None:
    room_id = await server_process.create_room()
    url = f"{server_process.base_url}/r/{room_id}"
    ada = await open_room_with(browser, url, FAKE_DEVICES)
    grace = await open_room_with(browser, url, FAKE_DEVICES)
    await join(ada, "Ada")
    await join(grace, "Grace")
    await wait_playing(ada, 1)
    await wait_playing(grace, 1)
    await open_devices_menu(ada)

    # The counters see offers and connections (each page answered at least the first offer).
    offers = await offers_answered(ada)
    connections = await call_connections_made(ada)
    assert offers >= 1 and connections == 1
    assert await sent_label(ada, "video") == CHROMIUM_CAMERA
    # The colour probe can fail: Chromium's camera is not the magenta canvas.
    assert not near(await tile_colour(grace, "Ada"), MAGENTA)

    # Camera: Grace sees the canvas, and Ada's tile kept presenting frames through the switch.
    start = await page_now(grace)
    await in_call(ada, "Camera").select_option(label=CANVAS_CAMERA)
    await wait_tile_colour(grace, "Ada", MAGENTA)
    await asyncio.sleep(2.5)  # a full frame-check window after the switch
    end = await page_now(grace)
    [tile] = await remote_frames(grace)
    assert video_verdict(tile, start, end) == "playing"
    assert await sent_label(ada, "video") == CANVAS_CAMERA
    # No new offer/answer round and no new connection: the sender's track was replaced. (The
    # magenta at Grace is the barrier: it flows only once the switch is complete, so a
    # renegotiation or a new connection would have happened before it.)
    assert await offers_answered(ada) == offers
    assert await call_connections_made(ada) == connections

    # Microphone, muted: the new one is sent, still muted.
    await ada.get_by_role("button", name="Mute", exact=True).click()
    await open_devices_menu(ada)  # the click closed it, as any click elsewhere does
    before = [track for track in await sent_tracks(ada) if track["kind"] == "audio"]
    assert before[0]["enabled"] is False and before[0]["label"] != "Fake Audio Input 1"
    await in_call(ada, "Microphone").select_option(label="Fake Audio Input 1")
    await ada.wait_for_function(
        "() => window.__fakeDevices.sentTracks().some((t) => t.kind === 'audio'"
        " && t.label === 'Fake Audio Input 1')"
    )
    [audio] = [track for track in await sent_tracks(ada) if track["kind"] == "audio"]
    assert audio["enabled"] is False
    await expect(ada.get_by_role("button", name="Unmute", exact=True)).to_be_visible()

    # Speaker: Grace's tile on Ada's page plays through the chosen output.
    sink = "() => document.querySelector('[data-participant]:not([data-local]) video').sinkId"
    assert await ada.evaluate(sink) == ""
    speaker = in_call(ada, "Speaker")
    await speaker.select_option(label="Fake Audio Output 1")
    chosen = await speaker.input_value()
    await ada.wait_for_function(f"() => ({sink})() === {chosen!r}")

    # A camera that cannot be opened: a clear notice, the canvas stays, Grace still sees it.
    await in_call(ada, "Camera").select_option(label=BUSY_CAMERA)
    await expect(ada.locator(VIDEO_NOTICE)).to_have_text(
        f'Could not start the camera "{BUSY_CAMERA}": another app may be using it.'
    )
    assert await sent_label(ada, "video") == CANVAS_CAMERA
    await expect(in_call(ada, "Camera")).to_have_value(
        await ada.evaluate("() => window.__fakeDevices.CANVAS_ID")
    )
    await wait_playing(grace, 1)

    # Unplugged: back to Chromium's camera, with a notice naming both; Grace sees it play.
    await ada.evaluate("() => window.__fakeDevices.unplug(window.__fakeDevices.CANVAS_ID)")
    await expect(ada.locator(VIDEO_NOTICE)).to_have_text(
        f'Camera "{CANVAS_CAMERA}" was disconnected: now using "{CHROMIUM_CAMERA}".',
        timeout=10_000,
    )
    assert await sent_label(ada, "video") == CHROMIUM_CAMERA
    await wait_tile_colour(grace, "Ada", MAGENTA, away=True)
    await wait_playing(grace, 1)
    await expect(in_call(ada, "Camera").locator("option")).to_have_text(
        [CHROMIUM_CAMERA, BUSY_CAMERA]
    )
    assert await offers_answered(ada) == offers
    assert await call_connections_made(ada) == connections

    # The offer counter can fail: a third person joining makes the server offer again, counted,
    # on the same connection.
    edsger = await open_room_with(browser, url, FAKE_DEVICES)
    await join(edsger, "Edsger")
    await wait_playing(ada, 2)
    assert await offers_answered(ada) > offers
    assert await call_connections_made(ada) == connections
