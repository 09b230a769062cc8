"""Issue 14's features in Firefox (item 6), in a mixed call through ``meetnow serve``: headless
Chromium (Playwright) and headless Firefox (Debian's firefox-esr over WebDriver BiDi,
tests/support/firefox.py) in one room, one browser of each shared by every check.

What is true of Firefox 153 ESR here, and checked:
- its fake microphone (``media.navigator.streams.fake``) is a steady tone with no processing
  (``noiseSuppression: false``), so the relay hears it as speech: Firefox's tile is marked
  speaking at Chromium's page (and unmarked once Firefox mutes);
- it has ``setSinkId``, so the "Speaker" select is offered, but a headless machine without sound
  devices lists no outputs: the select is there, empty and disabled;
- its ``getStats()`` names the selected pair in ``transport`` stats, as Chromium does, and has
  ``currentRoundTripTime``: quality.js reads it unchanged;
- "You are muted" cannot be seen in headless Firefox here: an ``AudioContext`` never leaves
  ``suspended`` on a machine without an audio output (``resume()`` never settles, even with user
  activation), so the page's analyser reads silence. Not tested in Firefox (it is in Chromium).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright, expect

from ..conftest import ServerProcess
from ..support import browser as chromium
from ..support import firefox
from ..support.browser import CHROMIUM, CHROMIUM_FLAGS, join, video_verdict
from ..support.fake_devices import (
    BUSY_CAMERA,
    CANVAS_CAMERA,
    FAKE_DEVICES,
    MAGENTA,
    near,
    open_room_with,
    tile_colour,
    wait_tile_colour,
)
from ..support.firefox import FirefoxPage, launch_firefox
from .test_network_check import CHECK_RESULT
from .test_quality import FIGURES, QUALITIES
from .test_speaker_view import RECORD_SPEAKING, TILE_AREA, write_speech_wav

pytestmark = pytest.mark.browser

FIREFOX_CAMERA = "Default Video Device"
FIREFOX_MICROPHONE = "Default Audio Device"
NO_SET_SINK_ID = "delete HTMLMediaElement.prototype.setSinkId;"
OWN_ID = (
    "() => document.querySelector('[data-local]:not([data-screen])')?.dataset.participant ?? null"
)
SELECTS = """(scope) => Object.fromEntries(Array.from(
  document.querySelectorAll(`${scope} select[data-device-kind]`), (select) => [
    document.querySelector(`label[for='${select.id}']`)?.textContent ?? '',
    { options: Array.from(select.options, (option) => option.textContent),
      value: select.value, disabled: select.disabled }]))"""
"""The device selects under ``scope``, by their label's text: options (as text), value, disabled."""
CHOOSE = """(scope, label, option) => {
  const select = Array.from(document.querySelectorAll(`${scope} select[data-device-kind]`))
    .find((s) => document.querySelector(`label[for='${s.id}']`)?.textContent === label);
  const wanted = select && Array.from(select.options).find((o) => o.textContent === option);
  if (!wanted) return false;
  select.value = wanted.value;
  select.dispatchEvent(new Event('change', { bubbles: true }));
  return true;
}"""
"""Pick ``option`` in the select labelled ``label``, as a user does (a ``change`` event)."""
PREVIEW_CAMERA = (
    "() => document.getElementById('preview')?.srcObject?.getVideoTracks()[0]?.label ?? null"
)
TILE_MARKS = """() => Object.fromEntries(Array.from(
  document.querySelectorAll('.tile[data-participant]:not([data-screen])'),
  (tile) => [tile.querySelector('.tile__name')?.textContent ?? '',
             { speaking: tile.hasAttribute('data-speaking'), quality: tile.dataset.quality ?? null,
               title: tile.title, stage: tile.hasAttribute('data-stage') }]))"""
"""Name -> what each person's tile shows: speaking, quality and its tooltip, on the stage."""


@pytest.fixture
async def talking_chromium(tmp_path: Path) -> AsyncIterator[Browser]:
    """Chromium whose fake microphone plays speech-like syllables (test_speaker_view's WAV)."""
    speech = tmp_path / "speech.wav"
    write_speech_wav(speech)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={speech}"],
            headless=True,
        )
        yield launched
        await launched.close()


async def choose(page: FirefoxPage, scope: str, label: str, option: str) -> None:
    if not await page.call(CHOOSE, scope, label, option):
        raise AssertionError(f"no option {option!r} in the {label!r} select under {scope}")


async def firefox_joins(page: FirefoxPage, name: str) -> None:
    await page.wait_for("() => document.querySelector('#join-button') !== null")
    await page.fill("Your name", name)
    await page.click_button("Join")


async def close_tab(page: FirefoxPage) -> None:
    await page.browser.command("browsingContext.close", {"context": page.context})


async def test_firefox_checks_the_network_speaks_switches_camera_and_rates_quality(
    talking_chromium: Browser, server_process: ServerProcess
) -> None:
    url = f"{server_process.base_url}/r/{await server_process.create_room('Firefox features')}"
    ada = await open_room_with(talking_chromium, url, RECORD_SPEAKING)
    await join(ada, "Ada")
    async with launch_firefox() as fox:
        grace = await fox.new_page(url, preload=FAKE_DEVICES + "\n" + RECORD_SPEAKING)

        # The pre-join network check: on loopback, media reaches the relay directly.
        verdict = await grace.wait_for(CHECK_RESULT, timeout_s=30.0)
        assert verdict == "direct"
        assert await grace.call(
            "() => document.getElementById('network-check').dataset.candidate"
        ) in ("host", "prflx", "srflx")

        # Devices on the pre-join screen: Firefox's fake camera and microphone listed by their
        # labels (as text), the canvas and busy cameras of fake_devices.js after them; the
        # preview shows Firefox's own camera (so the remembered choice below can fail).
        await grace.wait_for(f"() => ({PREVIEW_CAMERA})() === {FIREFOX_CAMERA!r}")
        prejoin = await grace.wait_for(
            f"() => {{ const s = ({SELECTS})('#prejoin');"
            " return s.Camera?.options.length === 3 ? s : null; }"
        )
        assert prejoin["Camera"]["options"] == [FIREFOX_CAMERA, CANVAS_CAMERA, BUSY_CAMERA]
        assert prejoin["Microphone"]["options"] == [FIREFOX_MICROPHONE]
        # Firefox has setSinkId: "Speaker" is offered, but a machine without sound devices
        # lists no output, so it is empty and disabled.
        assert prejoin["Speaker"] == {"options": [], "value": "", "disabled": True}
        # The check can fail: the same Firefox without setSinkId offers no "Speaker".
        no_sink = await fox.new_page(url, preload=NO_SET_SINK_ID)
        others = await no_sink.wait_for(
            f"() => {{ const s = ({SELECTS})('#prejoin'); return s.Camera ? s : null; }}"
        )
        assert set(others) == {"Camera", "Microphone"}, others
        await close_tab(no_sink)

        await firefox_joins(grace, "Grace")
        await firefox.wait_playing(grace, 1, timeout_s=60.0)
        await chromium.wait_playing(ada, 1, timeout_ms=60_000)
        ada_id = await ada.evaluate(OWN_ID)
        grace_id = await grace.wait_for(OWN_ID)

        # Who speaks: Ada's tile is marked at Firefox's page. Firefox's fake microphone is a
        # steady, unprocessed tone: the relay hears speech, and Chromium marks Grace's tile.
        await grace.wait_for(f"() => ({TILE_MARKS})().Ada?.speaking === true")
        await expect(
            ada.locator(f".tile[data-participant='{grace_id}']:not([data-screen])")
        ).to_have_attribute("data-speaking", "", timeout=20_000)
        # Speaker view in Firefox: Ada on the stage, large; the grid again after.
        await grace.click_button("Speaker view")
        await grace.wait_for("() => document.getElementById('grid').dataset.layout === 'stage'")
        marks = await grace.call(TILE_MARKS)
        assert marks["Ada"]["stage"] and not marks["Grace (you)"]["stage"], marks
        ada_area = await grace.call(TILE_AREA, ada_id)
        grace_area = await grace.call(TILE_AREA, grace_id)
        assert ada_area > 4 * grace_area, (ada_area, grace_area)
        await grace.click_button("Grid view")
        await grace.wait_for("() => document.getElementById('grid').dataset.layout !== 'stage'")

        # Quality in Firefox: its tiles judged from Firefox's getStats(), figures in the tooltip.
        tiles = await grace.wait_for(
            f"() => {{ const t = ({TILE_MARKS})();"
            " return t.Ada?.quality && t['Grace (you)']?.quality ? t : null; }",
            timeout_s=30.0,
        )
        for name in ("Ada", "Grace (you)"):
            assert tiles[name]["quality"] in QUALITIES, tiles
            assert FIGURES.match(tiles[name]["title"]), tiles

        # Switching camera in the call: the fake_devices.js counters saw the call's offer and
        # connection (so "unchanged" below can fail), and Ada does not see magenta yet.
        offers = await grace.call("() => window.__fakeDevices.offersAnswered()")
        connections = await grace.call("() => window.__fakeDevices.callConnectionCount()")
        assert offers >= 1 and connections == 1, (offers, connections)
        assert not near(await tile_colour(ada, "Grace"), MAGENTA)
        start = await chromium.page_now(ada)
        await choose(grace, "#call", "Camera", CANVAS_CAMERA)
        await wait_tile_colour(ada, "Grace", MAGENTA)
        await asyncio.sleep(2.5)  # a full frame-check window after the switch
        end = await chromium.page_now(ada)
        [tile] = await chromium.remote_frames(ada)
        assert video_verdict(tile, start, end) == "playing", chromium.frames_per_second(
            tile, start, end
        )
        sent = await grace.call("() => window.__fakeDevices.sentTracks()")
        assert [t["label"] for t in sent if t["kind"] == "video"] == [CANVAS_CAMERA], sent
        assert await grace.call("() => window.__fakeDevices.offersAnswered()") == offers
        assert await grace.call("() => window.__fakeDevices.callConnectionCount()") == connections

        # Firefox mutes: its tile is no longer marked speaking at Chromium's page.
        await grace.click_button("Mute")
        await expect(
            ada.locator(f".tile[data-participant='{grace_id}']:not([data-screen])")
        ).not_to_have_attribute("data-speaking", "", timeout=20_000)
        # The tile probe can fail: at Firefox's own page, her tile is unmarked too, Ada's not.
        await grace.wait_for(
            f"() => {{ const t = ({TILE_MARKS})();"
            " return t['Grace (you)']?.speaking === false && t.Ada?.speaking === true; }"
        )

        # The choice is remembered: after a reload Firefox's preview is the canvas camera again.
        await grace.goto(url)
        await grace.wait_for(f"() => ({PREVIEW_CAMERA})() === {CANVAS_CAMERA!r}")
        again = await grace.wait_for(
            f"() => {{ const s = ({SELECTS})('#prejoin');"
            " return s.Camera?.options.length === 3 ? s : null; }"
        )
        assert again["Camera"]["value"] == "meetnow-test-canvas-camera", again

    # Chromium's recorder (every mark, even a passing one) saw both people speak.
    assert {ada_id, grace_id} <= set(await ada.evaluate("() => window.__everSpeaking()"))


def test_the_figures_pattern_rejects_a_tooltip_without_round_trip_time() -> None:
    """Test of the test: a Firefox tooltip missing a figure (no RTT read) fails the check."""
    assert FIGURES.match("Loss 0.0% · RTT 3 ms · 29 fps")
    assert not FIGURES.match("Loss 0.0% · 29 fps")
